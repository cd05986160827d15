package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/tracing"
)

// recorder returns a Tracer whose ended spans the returned recorder holds.
func recorder(t *testing.T) (tracing.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := tracing.NewProvider("test", sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tracing.New(tp, "test"), rec
}

func TestExporter(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		kind, ep string
	}{
		{"nothing set", nil, "", ""},
		{"otlp", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, "otlp", "http://127.0.0.1:4318"},
		{"otlp traces endpoint first", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b/v1/traces"}, "otlp", "http://b/v1/traces"},
		{"zipkin default", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "zipkin", "http://127.0.0.1:9411/api/v2/spans"},
		{"none wins", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://a"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, ep := tracing.Exporter(func(k string) string { return tt.env[k] })
			if kind != tt.kind || ep != tt.ep {
				t.Errorf("Exporter = %q %q, want %q %q", kind, ep, tt.kind, tt.ep)
			}
		})
	}
}

func TestSetupWithoutExporterIsDisabled(t *testing.T) {
	tr, shutdown, err := tracing.Setup(context.Background(), "order", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	_, span := tr.Start(context.Background(), "x", messaging.NewTraceparent(), trace.SpanKindInternal)
	if span.IsRecording() {
		t.Fatal("a span of the disabled tracer records")
	}
}

func TestTraceparentRoundTrip(t *testing.T) {
	tp := messaging.NewTraceparent()
	if got := tracing.Traceparent(tracing.SpanContext(tp)); got != tp {
		t.Fatalf("round trip: %s → %s", tp, got)
	}
	if tracing.SpanContext(messaging.Traceparent{}).IsValid() {
		t.Fatal("the zero traceparent makes a valid span context")
	}
}

// TestOneTrace follows an order's shape: an HTTP request carrying a traceparent, an outbox row
// written inside it, a consumer's span from that row's traceparent, and a gateway call from the
// consumer: four spans of one trace, each the child of the one before.
func TestOneTrace(t *testing.T) {
	tr, rec := recorder(t)
	caller := messaging.NewTraceparent()

	var row messaging.Traceparent
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := messaging.ParseTraceparent(r.Header.Get("traceparent")); err != nil {
			t.Errorf("the gateway call carries no traceparent: %v", err)
		}
	}))
	defer gateway.Close()
	client := &http.Client{Transport: tr.Transport("gateway", nil)}

	h := tr.Middleware(func(*http.Request) string { return "/orders" })(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tr.Start(r.Context(), "outbox insert OrderCreated", messaging.Traceparent{}, trace.SpanKindProducer)
		row = tracing.OutboxTraceparent(ctx, messaging.NewTraceparent())
		span.End()
		w.WriteHeader(http.StatusAccepted)
	}))
	req := httptest.NewRequest(http.MethodPost, "/orders", nil)
	req.Header.Set("traceparent", caller.String())
	h.ServeHTTP(httptest.NewRecorder(), req)

	ctx, consume := tr.Start(context.Background(), "consume OrderCreated", row, trace.SpanKindConsumer)
	greq, _ := http.NewRequestWithContext(ctx, http.MethodPost, gateway.URL, nil)
	resp, err := client.Do(greq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	consume.End()

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
		if s.SpanContext().TraceID().String() != caller.TraceID() {
			t.Errorf("span %q is in trace %s, not the caller's %s", s.Name(), s.SpanContext().TraceID(), caller.TraceID())
		}
	}
	chain := []struct{ span, parent string }{
		{"POST /orders", ""},
		{"outbox insert OrderCreated", "POST /orders"},
		{"consume OrderCreated", "outbox insert OrderCreated"},
		{"gateway POST", "consume OrderCreated"},
	}
	for _, c := range chain {
		s, ok := spans[c.span]
		if !ok {
			t.Fatalf("no span %q among %d", c.span, len(spans))
		}
		want := caller.SpanID()
		if c.parent != "" {
			want = spans[c.parent].SpanContext().SpanID().String()
		}
		if got := s.Parent().SpanID().String(); got != want {
			t.Errorf("span %q: parent %s, want %s (%s)", c.span, got, want, c.parent)
		}
	}
	if row.SpanID() != spans["outbox insert OrderCreated"].SpanContext().SpanID().String() {
		t.Errorf("the outbox row's traceparent %s is not its insert span", row)
	}
}
