// Package connect is the console's client of Kafka Connect's REST API: the connectors' and
// their tasks' states (with their error traces), and the restart of a failed one.
package connect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"outboxsaga.dev/console"
)

// Client calls Connect's REST API with HTTP Basic credentials.
type Client struct {
	http           *http.Client
	base           string
	user, password string
}

// New returns a client of the Connect REST API at base.
func New(hc *http.Client, base, user, password string) *Client {
	return &Client{http: hc, base: strings.TrimSuffix(base, "/"), user: user, password: password}
}

func (c *Client) do(ctx context.Context, method, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return fmt.Errorf("connect %s %s: %w", method, path, err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("kafka connect unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("kafka connect %s %s answered %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if v == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("connect %s %s: decode: %w", method, path, err)
	}
	return nil
}

// status is one connector of GET /connectors?expand=status.
type status struct {
	Status struct {
		Name      string `json:"name"`
		Connector struct {
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"connector"`
		Tasks []struct {
			ID    int    `json:"id"`
			State string `json:"state"`
			Trace string `json:"trace"`
		} `json:"tasks"`
	} `json:"status"`
}

// Connectors returns every connector with its tasks, by name.
func (c *Client) Connectors(ctx context.Context) ([]console.Connector, error) {
	var all map[string]status
	if err := c.do(ctx, http.MethodGet, "/connectors?expand=status", &all); err != nil {
		return nil, err
	}
	out := make([]console.Connector, 0, len(all))
	for name, s := range all {
		cn := console.Connector{Name: name, State: s.Status.Connector.State, Trace: s.Status.Connector.Trace}
		for _, t := range s.Status.Tasks {
			cn.Tasks = append(cn.Tasks, console.Task{ID: t.ID, State: t.State, Trace: t.Trace})
		}
		sort.Slice(cn.Tasks, func(i, j int) bool { return cn.Tasks[i].ID < cn.Tasks[j].ID })
		out = append(out, cn)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Restart restarts connector name and its failed tasks; a paused or stopped connector is
// resumed, since that is what an operator who presses restart on it wants.
func (c *Client) Restart(ctx context.Context, name string) error {
	p := "/connectors/" + url.PathEscape(name)
	var s status
	if err := c.do(ctx, http.MethodGet, p+"/status", &s.Status); err != nil {
		return err
	}
	if st := s.Status.Connector.State; st == "PAUSED" || st == "STOPPED" {
		return c.do(ctx, http.MethodPut, p+"/resume", nil)
	}
	return c.do(ctx, http.MethodPost, p+"/restart?includeTasks=true&onlyFailed=true", nil)
}
