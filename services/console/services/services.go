// Package services is the console's client of the saga services' HTTP APIs, as the operator
// (Authorization: Bearer <ADMIN_TOKEN>): the order service's list, orders, timelines and status
// streams, the shipping service's deliveries, the notification service's notifications, and
// every service's dead letters and their replay.
package services

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"outboxsaga.dev/console"
)

// ErrNotFound is what a service answers 404 with.
var ErrNotFound = errors.New("not found")

// Client calls the services. Its zero value is not usable: New.
type Client struct {
	http  *http.Client
	token string
	// urls holds each saga service's base URL by its name (order, inventory, ...).
	urls map[string]string
	// names holds the services' names in the stack's order.
	names []string
}

// New returns a client of the services at urls (by name, in the order names lists them), with
// the operator token.
func New(hc *http.Client, token string, names []string, urls map[string]string) *Client {
	return &Client{http: hc, token: token, names: names, urls: urls}
}

// Services returns the services' names, in the stack's order.
func (c *Client) Services() []string { return c.names }

// APIError is a service's error answer.
type APIError struct {
	Service string
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s service answered %d: %s", e.Service, e.Status, e.Message)
}

// Unwrap makes a 404 an ErrNotFound.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

// call sends a request to service and decodes a 2xx JSON answer into v (nil: discarded).
func (c *Client) call(ctx context.Context, service, method, path string, v any) error {
	base, ok := c.urls[service]
	if !ok {
		return fmt.Errorf("no URL for the %s service", service)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return fmt.Errorf("%s %s%s: %w", method, service, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s service unreachable: %w", service, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &APIError{Service: service, Status: resp.StatusCode, Message: msg}
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 32<<20)).Decode(v); err != nil {
		return fmt.Errorf("%s %s%s: decode: %w", method, service, path, err)
	}
	return nil
}

// Sagas returns a page of orders (the order service's GET /orders).
func (c *Client) Sagas(ctx context.Context, f console.SagaFilter) (console.SagaPage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"id": f.ID, "status": f.Status, "reason": f.Reason, "olderThan": f.OlderThan, "waiting": f.Waiting, "before": f.Before} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var p console.SagaPage
	err := c.call(ctx, "order", http.MethodGet, "/orders?"+q.Encode(), &p)
	return p, err
}

// Order returns order id.
func (c *Client) Order(ctx context.Context, id string) (console.Order, error) {
	var o console.Order
	err := c.call(ctx, "order", http.MethodGet, "/orders/"+url.PathEscape(id), &o)
	return o, err
}

// Events returns order id's timeline.
func (c *Client) Events(ctx context.Context, id string) ([]console.Event, error) {
	var es []console.Event
	err := c.call(ctx, "order", http.MethodGet, "/orders/"+url.PathEscape(id)+"/events", &es)
	return es, err
}

// Delivery returns order id's delivery; the zero Delivery while it has none.
func (c *Client) Delivery(ctx context.Context, id string) (console.Delivery, error) {
	var d console.Delivery
	err := c.call(ctx, "shipping", http.MethodGet, "/deliveries/"+url.PathEscape(id), &d)
	if errors.Is(err, ErrNotFound) {
		return console.Delivery{}, nil
	}
	return d, err
}

// Notifications returns what the notification service sent about order id.
func (c *Client) Notifications(ctx context.Context, id string) ([]console.Notification, error) {
	var ns []console.Notification
	err := c.call(ctx, "notification", http.MethodGet, "/notifications?limit=1000&orderId="+url.QueryEscape(id), &ns)
	return ns, err
}

// Watch follows order id's status stream (GET /orders/{id}/stream) and calls changed on each
// status event, until ctx ends or the stream does.
func (c *Client) Watch(ctx context.Context, id string, changed func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.urls["order"]+"/orders/"+url.PathEscape(id)+"/stream", nil)
	if err != nil {
		return fmt.Errorf("stream of order %s: %w", id, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("stream of order %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &APIError{Service: "order", Status: resp.StatusCode, Message: "status stream refused"}
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			changed()
		}
	}
	return sc.Err()
}

// DeadLetters returns the dead letters of every service, newest first, and the services that
// could not be read.
func (c *Client) DeadLetters(ctx context.Context, limit int) ([]console.DeadLetter, map[string]error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		all  []console.DeadLetter
		errs = map[string]error{}
	)
	for _, name := range c.names {
		wg.Go(func() {
			var dls []console.DeadLetter
			err := c.call(ctx, name, http.MethodGet, "/dead-letters?limit="+strconv.Itoa(limit), &dls)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[name] = err
				return
			}
			for i := range dls {
				if dls[i].Service == "" {
					dls[i].Service = name
				}
			}
			all = append(all, dls...)
		})
	}
	wg.Wait()
	console.SortDeadLetters(all)
	return all, errs
}

// Replay replays dead letter ref (<service>:<id>) through its service's operator endpoint.
func (c *Client) Replay(ctx context.Context, ref string) console.ReplayOutcome {
	out := console.ReplayOutcome{Ref: ref}
	service, id, ok := strings.Cut(ref, ":")
	if _, known := c.urls[service]; !ok || !known {
		out.Detail = "no such dead letter"
		return out
	}
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		out.Detail = "no such dead letter"
		return out
	}
	err := c.call(ctx, service, http.MethodPost, "/dead-letters/"+id+"/replay", nil)
	var apiErr *APIError
	switch {
	case err == nil:
		out.OK, out.Detail = true, "replayed: the "+service+" service applied it"
	case errors.As(err, &apiErr):
		out.Detail = apiErr.Message
	default:
		out.Detail = err.Error()
	}
	return out
}
