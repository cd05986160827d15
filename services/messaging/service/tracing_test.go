package service_test

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/postgres/pgtest"
	"outboxsaga.dev/messaging/service"
	"outboxsaga.dev/messaging/service/servicetest"
)

// otlpReceiver is an OTLP/HTTP trace receiver (protobuf), as a collector or Jaeger runs one.
type otlpReceiver struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				o.services = append(o.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(mustMarshal(&coltracepb.ExportTraceServiceResponse{}))
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// TestTracesExportedOverOTLP runs a service with OTEL_EXPORTER_OTLP_ENDPOINT set: a request
// carrying a traceparent becomes a server span named by its route, child of the caller's span,
// and the outbox insert it makes a child of that, whose context is the row's traceparent; the
// spans reach the OTLP receiver when the service closes.
func TestTracesExportedOverOTLP(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)

	_, dbURL := pgtest.MustOpenTestDBURL(t)
	svc, err := service.Open(context.Background(), "demo", service.Config{DatabaseURL: dbURL, KafkaBrokers: []string{"127.0.0.1:1"}},
		zerolog.New(io.Discard), fstest.MapFS{})
	if err != nil {
		t.Fatal(err)
	}
	caller := messaging.NewTraceparent()
	var row messaging.Traceparent
	base, stop := servicetest.Start(t, func(ctx context.Context, ln net.Listener) error {
		return svc.Serve(ctx, ln, func(r chi.Router) {
			r.Post("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
				e := messaging.Envelope{EventID: "e-1", EventType: "OrderCreated", AggregateID: chi.URLParam(r, "id")}
				tp, end := svc.Outbox.Span(r.Context(), e, caller.Child())
				row = tp
				end(nil)
				w.WriteHeader(http.StatusAccepted)
			})
		})
	})
	req, _ := http.NewRequest(http.MethodPost, base+"/orders/o-1", nil)
	req.Header.Set("traceparent", caller.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stop()
	if err := svc.Close(); err != nil { // flushes the spans
		t.Fatal(err)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	byName := map[string]*tracepb.Span{}
	for _, s := range recv.spans {
		byName[s.Name] = s
	}
	server, insert := byName["POST /orders/{id}"], byName["outbox insert OrderCreated"]
	if server == nil || insert == nil {
		names := []string{}
		for n := range byName {
			names = append(names, n)
		}
		t.Fatalf("spans received: %v; want the request's and the insert's", names)
	}
	if got := hex.EncodeToString(server.TraceId); got != caller.TraceID() {
		t.Errorf("the request's span is in trace %s, not the caller's %s", got, caller.TraceID())
	}
	if got := hex.EncodeToString(server.ParentSpanId); got != caller.SpanID() {
		t.Errorf("the request's span has parent %s, not the caller's span %s", got, caller.SpanID())
	}
	if got, want := hex.EncodeToString(insert.ParentSpanId), hex.EncodeToString(server.SpanId); got != want {
		t.Errorf("the insert's span has parent %s, not the request's span %s", got, want)
	}
	if got := hex.EncodeToString(insert.SpanId); got != row.SpanID() || row.TraceID() != caller.TraceID() {
		t.Errorf("the row's traceparent %s is not the insert's span %s in the caller's trace", row, got)
	}
	if len(recv.services) == 0 || recv.services[0] != "demo" {
		t.Errorf("service.name = %v, want demo", recv.services)
	}
}
