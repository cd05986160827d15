package plainorder_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"outboxsaga.dev/tools/plainorder"
	"outboxsaga.dev/tools/stackenv"
)

type bearers struct{}

func (bearers) Bearer(c string) (string, error) { return "Bearer customer-" + c, nil }

// stack is a fake order and inventory service: the order ends as final after two polls.
func stack(t *testing.T, final string, placeStatus int) (*plainorder.Orderer, *atomic.Int32) {
	t.Helper()
	var polls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		switch {
		case r.Method == http.MethodPut && (r.URL.Path == "/prices/PLAIN-1" || r.URL.Path == "/stock/PLAIN-1"):
			if auth != "Bearer admin" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		case r.Method == http.MethodPost && r.URL.Path == "/orders":
			var o struct {
				CustomerID string `json:"customerId"`
				Items      []struct{ SKU string }
			}
			if err := json.NewDecoder(r.Body).Decode(&o); err != nil || auth != "Bearer customer-U-plain" || o.CustomerID != "U-plain" || len(o.Items) != 1 {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.WriteHeader(placeStatus)
			w.Write([]byte(`{"orderId":"o-1"}`))
		case r.Method == http.MethodGet && r.URL.Path == "/orders/o-1":
			status := "PENDING"
			if polls.Add(1) > 2 {
				status = final
			}
			w.Write([]byte(`{"status":"` + status + `","reason":"PAYMENT_DECLINED"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	o := plainorder.New(stackenv.Env{OrderURL: srv.URL, InventoryURL: srv.URL, AdminToken: "admin"}, bearers{})
	o.Poll = time.Millisecond
	return o, &polls
}

func TestPlacesAndAwaitsCompletion(t *testing.T) {
	o, polls := stack(t, "COMPLETED", http.StatusAccepted)
	ctx := context.Background()
	id, err := o.Place(ctx)
	if err != nil || id != "o-1" {
		t.Fatalf("Place = %q, %v; want o-1", id, err)
	}
	if err := o.Await(ctx, id); err != nil {
		t.Fatal(err)
	}
	if polls.Load() != 3 {
		t.Errorf("polled %d times, want 3", polls.Load())
	}
}

func TestCanceledIsAnError(t *testing.T) {
	o, _ := stack(t, "CANCELED", http.StatusAccepted)
	err := o.Await(context.Background(), "o-1")
	if err == nil || !strings.Contains(err.Error(), "CANCELED PAYMENT_DECLINED") {
		t.Fatalf("Await = %v, want the cancellation and its reason", err)
	}
}

func TestRefusedOrderIsAnError(t *testing.T) {
	o, _ := stack(t, "COMPLETED", http.StatusConflict)
	if _, err := o.Place(context.Background()); err == nil || !strings.Contains(err.Error(), "answered 409") {
		t.Fatalf("Place = %v, want the refusal", err)
	}
}

func TestAwaitEndsWithItsContext(t *testing.T) {
	o, _ := stack(t, "PENDING", http.StatusAccepted)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := o.Await(ctx, "o-1"); err == nil || !strings.Contains(err.Error(), "still PENDING") {
		t.Fatalf("Await = %v, want it to give up naming the status", err)
	}
}

func TestNoOperatorTokenIsAnError(t *testing.T) {
	o, _ := stack(t, "COMPLETED", http.StatusAccepted)
	o.Env.AdminToken = ""
	if _, err := o.Place(context.Background()); err == nil {
		t.Fatal("Place without an operator token succeeded")
	}
}
