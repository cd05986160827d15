// Package connect is the console's view of Kafka Connect's REST API: the connectors' and their
// tasks' states (with their error traces) as the console's types, and the restart of a failed
// one. The calls themselves are the project's one Connect client, debezium.Client.
package connect

import (
	"context"
	"net/http"
	"sort"

	"outboxsaga.dev/console"
	"outboxsaga.dev/messaging/debezium"
)

// Client calls Connect's REST API with HTTP Basic credentials.
type Client struct {
	rest *debezium.Client
}

// New returns a client of the Connect REST API at base.
func New(hc *http.Client, base, user, password string) *Client {
	rest := debezium.NewClient(base, user, password)
	rest.HTTP = hc
	return &Client{rest: rest}
}

// Connectors returns every connector with its tasks, by name.
func (c *Client) Connectors(ctx context.Context) ([]console.Connector, error) {
	all, err := c.rest.Statuses(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]console.Connector, 0, len(all))
	for name, s := range all {
		cn := console.Connector{Name: name, State: s.Connector.State, Trace: s.Connector.Trace}
		for _, t := range s.Tasks {
			cn.Tasks = append(cn.Tasks, console.Task{ID: t.ID, State: t.State.State, Trace: t.Trace})
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
	s, err := c.rest.Status(ctx, name)
	if err != nil {
		return err
	}
	if st := s.Connector.State; st == "PAUSED" || st == "STOPPED" {
		return c.rest.Resume(ctx, name)
	}
	return c.rest.RestartFailed(ctx, name)
}
