// Package tracing wraps OpenTelemetry's Go SDK for the services: one TracerProvider per
// process, exporting over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, to a Zipkin server when OTEL_TRACES_EXPORTER=zipkin
// (the local viewer, `make traces`), and to nothing otherwise: then every span is a no-op and
// tracing costs nothing but the W3C traceparent the events carry anyway.
//
// The spans of one order form one trace: the HTTP request that places it, each outbox insert,
// each consumed record (a child of the span that inserted the outbox row, through the record's
// traceparent header), each gateway and webhook call. The outbox row's traceparent is the
// span context of its insert span (OutboxTraceparent), so the consumer's span hangs below it.
package tracing

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/zipkin"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"outboxsaga.dev/messaging"
)

// Tracer starts the service's spans. Its zero value and Disabled() start no-op spans.
type Tracer struct {
	tracer trace.Tracer
}

// Disabled is a Tracer whose spans record nothing.
func Disabled() Tracer { return Tracer{tracer: noop.NewTracerProvider().Tracer("")} }

// New returns a Tracer of provider for the named service (the instrumentation scope).
func New(provider trace.TracerProvider, service string) Tracer {
	return Tracer{tracer: provider.Tracer("outboxsaga.dev/" + service)}
}

// Exporter names the span exporter the environment asks for: "otlp" (with its endpoint),
// "zipkin" (with its endpoint) or "" (none).
func Exporter(getenv func(string) string) (kind, endpoint string) {
	switch strings.ToLower(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return "", ""
	case "zipkin":
		ep := getenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT")
		if ep == "" {
			ep = "http://127.0.0.1:9411/api/v2/spans"
		}
		return "zipkin", ep
	}
	if ep := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); ep != "" {
		return "otlp", ep
	}
	if ep := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); ep != "" {
		return "otlp", ep
	}
	return "", ""
}

// Setup makes the process's TracerProvider from the environment (Exporter) for the named
// service. With no exporter it returns Disabled and a no-op shutdown. shutdown flushes what is
// buffered; call it once when the service stops.
func Setup(ctx context.Context, service string, getenv func(string) string) (Tracer, func(context.Context) error, error) {
	kind, endpoint := Exporter(getenv)
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch kind {
	case "":
		return Disabled(), func(context.Context) error { return nil }, nil
	case "zipkin":
		exp, err = zipkin.New(endpoint)
	case "otlp":
		// The SDK reads OTEL_EXPORTER_OTLP_* itself (endpoint, headers, timeout); the endpoint
		// is named here only to say it in errors.
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return Tracer{}, nil, fmt.Errorf("trace exporter %s at %s: %w", kind, endpoint, err)
	}
	tp := NewProvider(service, sdktrace.WithBatcher(exp))
	return New(tp, service), tp.Shutdown, nil
}

// NewProvider returns an SDK TracerProvider for the named service, sampling every trace that
// its parent sampled (and every new one), with opts (an exporter: WithBatcher, WithSyncer).
func NewProvider(service string, opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	res := resource.NewSchemaless(semconv.ServiceName(service))
	opts = append([]sdktrace.TracerProviderOption{sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample()))}, opts...)
	return sdktrace.NewTracerProvider(opts...)
}

// Start starts a span named name as a child of the span in ctx, or, when parent is not zero, of
// parent (a traceparent that came from elsewhere: an HTTP header, a Kafka record).
func (t Tracer) Start(ctx context.Context, name string, parent messaging.Traceparent, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if t.tracer == nil {
		t = Disabled()
	}
	if sc := SpanContext(parent); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// End ends span, marking it failed when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// SpanContext is tp as an OpenTelemetry span context (invalid for the zero Traceparent).
func SpanContext(tp messaging.Traceparent) trace.SpanContext {
	if tp.IsZero() {
		return trace.SpanContext{}
	}
	var cfg trace.SpanContextConfig
	if _, err := hex.Decode(cfg.TraceID[:], []byte(tp.TraceID())); err != nil {
		return trace.SpanContext{}
	}
	if _, err := hex.Decode(cfg.SpanID[:], []byte(tp.SpanID())); err != nil {
		return trace.SpanContext{}
	}
	if strings.HasSuffix(tp.String(), "-01") {
		cfg.TraceFlags = trace.FlagsSampled
	}
	cfg.Remote = true
	return trace.NewSpanContext(cfg)
}

// Traceparent is sc as a traceparent (zero for an invalid span context).
func Traceparent(sc trace.SpanContext) messaging.Traceparent {
	if !sc.IsValid() {
		return messaging.Traceparent{}
	}
	tp, err := messaging.ParseTraceparent(fmt.Sprintf("00-%s-%s-%02x", sc.TraceID(), sc.SpanID(), byte(sc.TraceFlags())))
	if err != nil {
		return messaging.Traceparent{}
	}
	return tp
}

// OutboxTraceparent is the traceparent an outbox row written in ctx carries: the span in ctx
// when it records (the row's insert span, so the consumer's span becomes its child), else
// fallback (the traceparent the caller would have used without tracing).
func OutboxTraceparent(ctx context.Context, fallback messaging.Traceparent) messaging.Traceparent {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return fallback
	}
	if tp := Traceparent(span.SpanContext()); !tp.IsZero() {
		return tp
	}
	return fallback
}

// Transport wraps base (nil: http.DefaultTransport) so that every request it sends is a client
// span of the span in its context, named name and the request's method ("gateway POST"), with the span's traceparent in the request's
// header: the gateway and webhook calls.
func (t Tracer) Transport(name string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{t: t, name: name, base: base}
}

type roundTripper struct {
	t    Tracer
	name string
	base http.RoundTripper
}

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := rt.t.Start(r.Context(), rt.name+" "+r.Method, messaging.Traceparent{}, trace.SpanKindClient,
		attribute.String("http.request.method", r.Method), attribute.String("server.address", r.URL.Host),
		attribute.String("url.path", r.URL.Path))
	defer span.End()
	r = r.Clone(ctx)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(r.Header))
	resp, err := rt.base.RoundTrip(r)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode >= 500 {
		span.SetStatus(codes.Error, resp.Status)
	}
	return resp, nil
}

// Middleware makes every HTTP request a server span, a child of the request's traceparent
// header when it has one; route names the span ("POST /orders") once the router has matched it.
func (t Tracer) Middleware(route func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			parent, _ := messaging.ParseTraceparent(r.Header.Get("traceparent"))
			ctx, span := t.Start(r.Context(), r.Method, parent, trace.SpanKindServer,
				attribute.String("http.request.method", r.Method), attribute.String("url.path", r.URL.Path))
			defer span.End()
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(sw, r.WithContext(ctx))
			if name := route(r); name != "" {
				span.SetName(r.Method + " " + name)
				span.SetAttributes(attribute.String("http.route", name))
			}
			span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status))
			}
		})
	}
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush passes a flush through (the order service's SSE stream needs it).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
