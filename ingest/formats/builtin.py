"""The built-in text formats, in the order they are tried (the first that takes a line wins).

Specific formats come first, generic ones last: a syslog or access-log line also starts with a
time, and would otherwise be read as "a time, then a message". Patterns follow the rules of
text.py (what Python's `re` and Rust's `regex` read alike). Sources: RFC 5424 and 3164 syslog;
NCSA common/combined (nginx, Apache); Apache and nginx error logs; klog; Android logcat
(threadtime); Ruby's Logger; CFDR supercomputer logs (Blue Gene/L RAS, Thunderbird, HPC);
and, generically, "a time, maybe a level, a message" in the forms real logs use (Python
logging, logback/log4j2, Spring Boot, Go's log, Hadoop, Spark, HDFS, Zookeeper, PostgreSQL,
MySQL, Kafka, Elasticsearch, Windows CBS, ...).
"""

from __future__ import annotations

import re

from ingest.formats.levels import LEVEL_WORDS
from ingest.formats.text import TextFormat
from ingest.formats.times import MONTH_WORDS


def _words(upper_only: bool = False) -> str:
    """Level words as an alternation, longest first, in the cases real logs write them."""
    words = sorted(LEVEL_WORDS, key=lambda w: (-len(w), w))
    cases = (
        [w for w in words]
        if upper_only
        else [v for w in words for v in dict.fromkeys((w, w.lower(), w.capitalize()))]
    )
    return "|".join(cases)


LEVEL = _words()
LEVEL_UPPER = _words(upper_only=True)

_MON = f"(?P<b>{MONTH_WORDS})"
_CLOCK = r"(?P<H>[0-9]{2}):(?P<M>[0-9]{2}):(?P<S>[0-9]{2})"
_FRACTION = r"(?:[.,](?P<f>[0-9]{1,9}))?"
_ISO_DATE = r"(?P<Y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
_PRI = r"(?:<(?P<pri>19[01]|1[0-8][0-9]|[1-9][0-9]|[0-9])>)?"
_MESSAGE = r"(?P<message>(?s:.*))"
_QUOTED = r'[^"\\]*(?:\\.[^"\\]*)*'  # unrolled: one class per char, not an alternation

# RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`, `-` for what is absent.
_SD = r'(?:\[[^ \]=]+(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+'
SYSLOG5424 = TextFormat(
    "syslog5424",
    rf"{_PRI}1 (?:-|{_ISO_DATE}T{_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?"
    r"(?P<z>Z|[+-][0-9]{2}:[0-9]{2}))"
    rf" (?P<host>[^ ]{{1,255}}) (?P<service>[^ ]{{1,48}}) (?P<pid>[^ ]{{1,128}})"
    rf" (?P<msgid>[^ ]{{1,32}}) (?P<sd>-|{_SD})(?: {_MESSAGE})?",
    types={"pid": int},
)

# RFC 3164 (BSD): `<PRI>Mmm dd HH:MM:SS HOST TAG[PID]: MSG`; the host may be missing (a local
# sender), the tag too. rsyslog's and journalctl's files write the same with an RFC 3339 time.
_TAG = r"(?:(?P<service>[^ :\[\]]{1,64})(?:\[(?P<pid>[0-9]{1,10})\])?: ?)"
_HOST = r"(?P<host>[^ ]*[^ :])"
SYSLOG3164 = TextFormat(
    "syslog3164",
    rf"{_PRI}{_MON} {{1,2}}(?P<d>[0-9]{{1,2}}) (?:(?P<Y>[0-9]{{4}}) )?{_CLOCK}"
    rf"(?:\.(?P<f>[0-9]{{1,9}}))?:? (?:{_HOST} )?{_TAG}?{_MESSAGE}",
    types={"pid": int},
)
SYSLOG_ISO = TextFormat(
    "syslog3164",
    rf"{_PRI}{_ISO_DATE}T{_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?"
    rf"(?P<z>Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)? {_HOST} {_TAG}{_MESSAGE}",
    types={"pid": int},
)

# CRI (containerd, CRI-O): `<RFC 3339 nano> stdout|stderr P|F <log>`; P = a partial line.
CRI = TextFormat(
    "cri",
    rf"{_ISO_DATE}T{_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?(?P<z>Z|[+-][0-9]{{2}}:[0-9]{{2}})"
    rf" (?P<stream>stdout|stderr) (?P<tag>[PF]) {_MESSAGE}",
)

# NCSA access logs: `client ident user [dd/Mmm/yyyy:HH:MM:SS zone] "request" status bytes`,
# then for `combined` the referer and user agent, then what nginx configs often add.
_CLF_TIME = (
    rf"\[(?P<d>[0-9]{{2}})/{_MON}/(?P<Y>[0-9]{{4}}):{_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?"
    r" (?P<z>[+-][0-9]{4})\]"
)
_REQUEST = (
    r'"(?:(?P<method>[A-Z]{1,20}) (?P<path>[^ "]*)(?: (?P<protocol>[A-Z]{2,10}/[0-9.]{1,5}))?'
    rf'|(?P<request>{_QUOTED}))"'
)
_ACCESS = (
    rf"(?P<client>[^ ]+) (?P<ident>[^ ]+) (?P<user>[^ ]+) {_CLF_TIME} {_REQUEST}"
    r" (?P<status>[0-9]{3}) (?P<bytes>[0-9]+|-)"
)
_ACCESS_TYPES = {"status": int, "bytes": int, "request_time": float}
COMBINED = TextFormat(
    "combined",
    rf'{_ACCESS} "(?P<referer>{_QUOTED})" "(?P<user_agent>{_QUOTED})"'
    rf'(?: "(?P<forwarded_for>{_QUOTED})")?(?: (?P<request_time>[0-9]{{1,9}}\.[0-9]{{1,9}}))?',
    types=_ACCESS_TYPES,
    whole_message=True,
    status_level=True,
)
COMMON = TextFormat("common", _ACCESS, types=_ACCESS_TYPES, whole_message=True, status_level=True)

# Apache httpd's error log: `[Www Mmm dd HH:MM:SS[.micro] yyyy] [module:level] [pid N:tid M]`.
APACHE_ERROR = TextFormat(
    "apache_error",
    rf"\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MON} (?P<d>[0-9]{{2}}) {_CLOCK}"
    rf"(?:\.(?P<f>[0-9]{{1,9}}))? (?P<Y>[0-9]{{4}})\]"
    r" \[(?:(?P<module>[a-z_0-9]{1,40}):)?(?P<level>[a-z]{1,6}[0-9]?)\]"
    r"(?: \[pid (?P<pid>[0-9]{1,10})(?::tid (?P<tid>[0-9]{1,20}))?\])?"
    rf"(?: \[client (?P<client>[^\]]{{1,300}})\])? ?{_MESSAGE}",
    types={"pid": int, "tid": int},
)

# nginx's error log: `yyyy/MM/dd HH:MM:SS [level] pid#tid: *connection message`.
NGINX_ERROR = TextFormat(
    "nginx_error",
    r"(?P<Y>[0-9]{4})/(?P<mo>[0-9]{2})/(?P<d>[0-9]{2}) "
    rf"{_CLOCK} \[(?P<level>[a-z]{{1,6}})\] (?P<pid>[0-9]{{1,10}})#(?P<tid>[0-9]{{1,20}}): "
    rf"(?:\*(?P<connection>[0-9]{{1,20}}) )?{_MESSAGE}",
    types={"pid": int, "tid": int, "connection": int},
)

# klog (Kubernetes, glog): `Lmmdd hh:mm:ss.uuuuuu threadid file:line] msg`.
KLOG = TextFormat(
    "klog",
    rf"(?P<lvl>[IWEF])(?P<mo>[0-9]{{2}})(?P<d>[0-9]{{2}}) {_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?"
    rf" +(?P<tid>[0-9]{{1,20}}) (?P<source>[^ :\]]{{1,200}}:[0-9]{{1,9}})\] ?{_MESSAGE}",
    types={"tid": int},
)

# Android logcat, threadtime: `MM-dd HH:mm:ss.SSS  pid  tid L tag: msg`.
ANDROID = TextFormat(
    "android",
    rf"(?P<mo>[0-9]{{2}})-(?P<d>[0-9]{{2}}) {_CLOCK}\.(?P<f>[0-9]{{3}})"
    r" +(?P<pid>[0-9]{1,10}) +(?P<tid>[0-9]{1,10}) (?P<lvl>[VDIWEFA])"
    rf" (?P<service>[^:]{{0,200}}?) *: ?{_MESSAGE}",
    types={"pid": int, "tid": int},
)

# Ruby's Logger: `I, [2026-11-23T10:00:00.123456 #1234]  INFO -- progname: msg`.
RUBY = TextFormat(
    "ruby",
    rf"(?P<lvl>[DIWEFA]), \[{_ISO_DATE}T{_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?"
    r" #(?P<pid>[0-9]{1,10})\]"
    rf" +(?P<level>[A-Z]{{1,7}}) -- (?P<service>[^:]{{0,200}}?): ?{_MESSAGE}",
    types={"pid": int},
)

# CFDR supercomputer logs: an alert tag (`-` for none), epoch seconds, a date, the node.
_CFDR = r"(?P<alert>-|[A-Z][A-Z0-9_]{0,30}) (?P<epoch>[0-9]{10}) [0-9]{4}\.[0-9]{2}\.[0-9]{2}"
BGL = TextFormat(
    "bgl",
    rf"{_CFDR} (?P<host>[^ ]+) [0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}-[0-9]{{2}}\.[0-9]{{2}}\.[0-9]{{2}}"
    r"\.[0-9]{1,9} [^ ]+ (?P<kind>[A-Z]{1,10}) (?P<facility>[A-Z_0-9]{1,20})"
    rf" (?P<level>[A-Z]{{1,10}}) {_MESSAGE}",
)
CFDR = TextFormat("cfdr", rf"{_CFDR} (?P<host>[^ ]+) {_MESSAGE}")
HPC = TextFormat(
    "hpc",
    r"(?P<logid>[0-9]{1,20}) (?P<host>[^ ]+) (?P<service>[^ ]+) (?P<state>[^ ]+)"
    rf" (?P<epoch>[0-9]{{10}}) (?P<flag>[0-9]{{1,5}}) {_MESSAGE}",
    types={"logid": int, "flag": int},
)
# `20171223-22:15:29:606|component|pid|message` (HealthApp and other mobile back ends).
PIPES = TextFormat(
    "pipes",
    r"(?P<Y>[0-9]{4})(?P<mo>[0-9]{2})(?P<d>[0-9]{2})-"
    rf"{_CLOCK}(?:[:.](?P<f>[0-9]{{1,9}}))?\|(?P<service>[^|]{{0,200}})\|(?P<pid>[0-9]{{1,10}})\|"
    rf"{_MESSAGE}",
    types={"pid": int},
)
# Proxifier: `[MM.dd HH:mm:ss] program - message`.
PROXIFIER = TextFormat(
    "proxifier",
    rf"\[(?P<mo>[0-9]{{2}})\.(?P<d>[0-9]{{2}}) {_CLOCK}\] (?P<service>[^ ]{{1,200}}) - {_MESSAGE}",
)

# Generic: a time, then maybe a level word near the start, then the message. The level may
# follow a pid, a [thread] or a `name -` (Python's `%(name)s - %(levelname)s`), and be bare,
# [bracketed], <angled>, `level=`-prefixed or followed by `:`.
_LEVEL_TAIL = (
    r"[ ,|:\]-]*(?:(?:(?P<pid>[0-9]{1,10})|\[(?P<thread>[^\]]{0,200})\]"
    r"|(?P<logger>[A-Za-z0-9_.$/@-]{1,200}) -) +)?"
    rf"(?:\[(?P<lv1>{LEVEL}) *\]|<(?P<lv2>{LEVEL})>|level=(?P<lv4>{LEVEL})[ ]"
    rf"|(?P<lv3>{LEVEL})[ :,|])"
    rf"[ :,|\]-]*{_MESSAGE}"
)
_PLAIN_TAIL = rf"[ ,|:\]-]*{_MESSAGE}"

_TIMES = {
    # ISO 8601 / RFC 3339, `T` or space, `.` or `,` fraction, a zone or not; bracketed or
    # not; after one leading token (OpenStack writes the file name first).
    "iso": (
        rf"\[?{_ISO_DATE}[T ]{_CLOCK}{_FRACTION}"
        r"(?:(?P<z>Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)| (?P<z2>UTC|GMT|[+-][0-9]{4}))?\]?"
    ),
    # Go's log, nginx: `yyyy/MM/dd HH:MM:SS[.micro]`.
    "slash": rf"\[?(?P<Y>[0-9]{{4}})/(?P<mo>[0-9]{{2}})/(?P<d>[0-9]{{2}}) {_CLOCK}{_FRACTION}\]?",
    # Spark (log4j `yy/MM/dd HH:mm:ss`).
    "yy_slash": rf"(?P<y2>[0-9]{{2}})/(?P<mo>[0-9]{{2}})/(?P<d>[0-9]{{2}}) {_CLOCK}{_FRACTION}",
    # HDFS: `yyMMdd HHmmss`.
    "yymmdd": (
        r"(?P<y2>[0-9]{2})(?P<mo>[0-9]{2})(?P<d>[0-9]{2}) "
        r"(?P<H>[0-9]{2})(?P<M>[0-9]{2})(?P<S>[0-9]{2})"
    ),
    # ISO 8601 basic: `20261123T100000Z`.
    "basic": (
        r"(?P<Y>[0-9]{4})(?P<mo>[0-9]{2})(?P<d>[0-9]{2})T(?P<H>[0-9]{2})(?P<M>[0-9]{2})"
        r"(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?(?P<z>Z|[+-][0-9]{4})?"
    ),
    # ctime: `[Sun Dec 04 04:47:44 2005]`.
    "ctime": (
        rf"\[?(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) {_MON} {{1,2}}(?P<d>[0-9]{{1,2}}) {_CLOCK}"
        rf"(?:\.(?P<f>[0-9]{{1,9}}))? (?P<Y>[0-9]{{4}})\]?"
    ),
    # `[10/Oct/2000:13:55:36 -0700]` at the start of a line.
    "clf": (
        rf"\[?(?P<d>[0-9]{{2}})/{_MON}/(?P<Y>[0-9]{{4}}):{_CLOCK}(?:\.(?P<f>[0-9]{{1,9}}))?"
        r"(?: (?P<z>[+-][0-9]{4}))?\]?"
    ),
    # `23 Nov 2026 10:00:00.123` (Redis, after `pid:role`), `23-Nov-2026 10:00:00`.
    "dmy": (
        rf"(?:(?P<prefix>[^ \[]{{1,40}}) )?\[?(?P<d>[0-9]{{1,2}})[ -]{_MON}[ -](?P<Y>[0-9]{{4}})"
        rf"[ :]{_CLOCK}{_FRACTION}\]?"
    ),
    # Android without pid and tid: `MM-dd HH:mm:ss.SSS`.
    "mmdd": rf"(?P<mo>[0-9]{{2}})-(?P<d>[0-9]{{2}}) {_CLOCK}\.(?P<f>[0-9]{{3,9}})",
    # Epoch seconds, maybe with a fraction, then a separator.
    "epoch": r"\[?(?P<epoch>[0-9]{10}(?:\.[0-9]{1,9})?)\]?[ ,|]",
    # A time of day alone (logback's and log4j2's default `HH:mm:ss.SSS`, Elixir's Logger).
    "clock": rf"\[?{_CLOCK}[.,](?P<f>[0-9]{{3,9}})\]?",
    # The same after one leading token (OpenStack writes the file name first). Its own format,
    # tried after the others: an optional token costs every ISO line a second look.
    "iso_after_token": (
        rf"(?P<prefix>[^ \[]{{1,200}}) \[?{_ISO_DATE}[T ]{_CLOCK}{_FRACTION}"
        r"(?:(?P<z>Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)| (?P<z2>UTC|GMT|[+-][0-9]{4}))?\]?"
    ),
}

TIME_FORMS = [re.compile(t) for t in _TIMES.values()]
"""Each time form alone, for the `ts` group of the user's formats."""
_TIMED_LEVEL = [
    TextFormat("timestamped", t + _LEVEL_TAIL, types={"pid": int}) for t in _TIMES.values()
]
_TIMED_PLAIN = [TextFormat("timestamped", t + _PLAIN_TAIL) for t in _TIMES.values()]

# A level first: Python's default `WARNING:root:msg`, uvicorn's `INFO:     msg`, `[ERROR] msg`,
# Cassandra's `INFO  [main] 2026-11-23 10:00:00,123 Server.java:123 - msg`.
PYTHON_BASIC = TextFormat(
    "python", rf"(?P<level>{LEVEL_UPPER}):(?P<logger>[A-Za-z0-9_.]{{1,200}}):{_MESSAGE}"
)
LEVEL_THEN_TIME = TextFormat(
    "timestamped",
    rf"(?P<lv3>{LEVEL_UPPER}) +(?:\[(?P<thread>[^\]]{{0,200}})\] +)?{_ISO_DATE}[T ]{_CLOCK}"
    rf"{_FRACTION}(?P<z>Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)?[ ,|:\]-]*{_MESSAGE}",
)
LEVEL_FIRST = TextFormat(
    "level",
    rf"(?:\[(?P<lv1>{LEVEL}) *\]|(?P<lv3>{LEVEL_UPPER}):?[ ])[ :-]*{_MESSAGE}",
)

BUILTIN: tuple[TextFormat, ...] = (
    SYSLOG5424,
    SYSLOG3164,
    CRI,
    # The commonest application line, an ISO time and a level, early: no format below it but
    # the generic ones can read a line that starts with an ISO date (the access logs would need
    # a CLF time in the fourth token), and the columnar lane tries each format in turn.
    _TIMED_LEVEL[0],
    COMBINED,
    COMMON,
    APACHE_ERROR,
    NGINX_ERROR,
    KLOG,
    ANDROID,
    RUBY,
    BGL,
    CFDR,
    HPC,
    PIPES,
    PROXIFIER,
    *_TIMED_LEVEL[1:],
    SYSLOG_ISO,
    *_TIMED_PLAIN,
    PYTHON_BASIC,
    LEVEL_THEN_TIME,
    LEVEL_FIRST,
)
"""Every built-in text format but logfmt (read as JSON: see logfmt.py), in the order tried."""

BY_NAME = {fmt.name: fmt for fmt in reversed(BUILTIN)}
