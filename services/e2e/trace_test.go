package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"outboxsaga.dev/messaging/eventually"
)

// zipkinSpan is what the test reads of a span from Zipkin's API (GET /api/v2/trace/{id}).
type zipkinSpan struct {
	ID            string `json:"id"`
	ParentID      string `json:"parentId"`
	Name          string `json:"name"`
	Kind          string `json:"kind"`
	LocalEndpoint struct {
		ServiceName string `json:"serviceName"`
	} `json:"localEndpoint"`
}

// TestOneOrderIsOneTrace places an order on the stack while its programs export their spans to
// Zipkin (make test runs it so: scripts/traces.sh, TRACES_ZIPKIN_URL) and reads its trace back:
// one trace across every saga service, one root (the POST), every other span's parent in the
// trace, and each kind of hop there: the request, outbox inserts, consumed records, the gateway
// call, the webhook calls and the carrier's moves.
func TestOneOrderIsOneTrace(t *testing.T) {
	zipkin := os.Getenv("TRACES_ZIPKIN_URL")
	if zipkin == "" {
		t.Skip("TRACES_ZIPKIN_URL is not set: make test runs this with the programs exporting to Zipkin (scripts/traces.sh)")
	}
	u := stackURLs()
	sku := newSKU(t, u, 5)
	id := orderEnding(t, u, "tok_ok", "COMPLETED", item{SKU: sku, Qty: 1, UnitPrice: 1200})

	var list struct {
		Orders []struct {
			TraceID string `json:"traceId"`
		} `json:"orders"`
	}
	if code, raw := call(t, http.MethodGet, u.order+"/orders?id="+id, nil, adminHeader(), &list); code != http.StatusOK || len(list.Orders) != 1 || list.Orders[0].TraceID == "" {
		t.Fatalf("GET /orders?id=%s: %d %s", id, code, raw)
	}
	traceID := list.Orders[0].TraceID

	want := []string{"post /orders", "outbox insert ordercreated", "consume ordercreated", "gateway post",
		"outbox insert paymentauthorized", "outbox insert ordercompleted", "consume ordercompleted",
		"webhook post", "carrier move", "outbox insert deliverydelivered"}
	var spans []zipkinSpan
	eventually.Holds(t, 60*time.Second, func() string {
		resp, err := http.Get(zipkin + "/api/v2/trace/" + traceID)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		spans = nil
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprintf("GET /api/v2/trace/%s: %s", traceID, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&spans); err != nil {
			return err.Error()
		}
		names := map[string]bool{}
		for _, s := range spans {
			names[s.Name] = true
		}
		for _, n := range want {
			if !names[n] {
				return fmt.Sprintf("%d spans so far, none named %q", len(spans), n)
			}
		}
		return ""
	})

	ids := map[string]bool{}
	services := map[string]bool{}
	for _, s := range spans {
		ids[s.ID] = true
		services[s.LocalEndpoint.ServiceName] = true
	}
	var roots []string
	for _, s := range spans {
		switch {
		case s.ParentID == "":
			roots = append(roots, s.Name)
		case !ids[s.ParentID]:
			t.Errorf("span %q (%s) has parent %s, which is not in the trace", s.Name, s.LocalEndpoint.ServiceName, s.ParentID)
		}
	}
	if len(roots) != 1 || roots[0] != "post /orders" {
		t.Errorf("roots %v, want the one request that placed the order", roots)
	}
	for _, svc := range sagaServices {
		if svc == "catalog" && !services[svc] {
			continue // it consumes order-events too; its spans may come after the order completed
		}
		if !services[svc] {
			got := make([]string, 0, len(services))
			for s := range services {
				got = append(got, s)
			}
			slices.Sort(got)
			t.Errorf("no span of %s in the trace (services: %s)", svc, strings.Join(got, ", "))
		}
	}
	t.Logf("trace %s: %d spans over %d services", traceID, len(spans), len(services))
}
