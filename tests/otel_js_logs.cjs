// The OpenTelemetry JS SDK's OTLP/HTTP log exporter, set up as its README shows, emitting to a
// receiver: node otel_js_logs.cjs <http|proto> <url> <token> <gzip|none> <count>
// (with NODE_PATH at the SDK's node_modules); url `env`: configured by the OTEL_EXPORTER_OTLP_*
// environment variables alone. Prints, as JSON on stdout, every record as the
// SDK made it (time, severity, body), the trace id it logged under and the export results.
'use strict';

const { context, trace, diag, DiagConsoleLogger, DiagLogLevel } = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base');

const [kind, url, token, compression, countText] = process.argv.slice(2);
const { OTLPLogExporter } = require(`@opentelemetry/exporter-logs-otlp-${kind}`);

// The SDK reports failed exports through diag: on stderr, for the test to show.
diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.WARN);

const exporter =
  url === 'env'
    ? new OTLPLogExporter()
    : new OTLPLogExporter({ url, headers: { Authorization: `Bearer ${token}` }, compression });

// Beside the exporter: what the SDK made of each record, and each export's result.
const emitted = [];
const results = [];
const export_ = exporter.export.bind(exporter);
exporter.export = (records, done) =>
  export_(records, (result) => {
    results.push({ records: records.length, code: result.code, error: String(result.error ?? '') });
    done(result);
  });
const capture = {
  onEmit(record) {
    emitted.push({
      hrTime: record.hrTime,
      severityText: record.severityText,
      body: record.body,
    });
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
};

const loggerProvider = new LoggerProvider({
  resource: resourceFromAttributes({ 'service.name': 'checkout', 'host.name': 'web-7' }),
  processors: [new BatchLogRecordProcessor({ exporter }), capture],
});
const logger = loggerProvider.getLogger('shop.payments', '1.4.2');

const tracer = new BasicTracerProvider().getTracer('test');
const span = tracer.startSpan('charge');
logger.emit({
  severityNumber: SeverityNumber.ERROR,
  severityText: 'ERROR',
  body: 'payment of order 42 failed',
  attributes: { order_id: 42, amount: 9.5, retried: false, 'user.tags': ['vip', 'eu'] },
  context: trace.setSpan(context.active(), span),
});
span.end();
logger.emit({
  severityNumber: SeverityNumber.INFO,
  body: { event: 'cart', items: 3, ok: true },
  timestamp: [1795168800, 123456789], // an HrTime of its own: nanoseconds kept
});
for (let i = 0; i < Number(countText); i += 1) {
  logger.emit({ severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `retrying ${i}` });
}

(async () => {
  await loggerProvider.forceFlush();
  await loggerProvider.shutdown();
  const spanContext = span.spanContext();
  process.stdout.write(
    JSON.stringify({ emitted, results, traceId: spanContext.traceId, spanId: spanContext.spanId }),
  );
})();
