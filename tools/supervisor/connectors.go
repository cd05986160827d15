package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"outboxsaga.dev/messaging/debezium"
)

// The Debezium connectors (connectors/*.json), registered with Kafka Connect's REST API as its
// one user. Idempotent: a connector whose stored config equals its file is left alone (a PUT of
// the same config would restart it); otherwise PUT /connectors/{name}/config creates it or
// updates it in place. A task that FAILED (e.g. during an outage) is restarted once; if it fails
// again, its trace is shown.

// connectorFile is a connector's JSON as committed.
type connectorFile struct {
	Name   string            `json:"name"`
	Config map[string]string `json:"config"`
}

func (s *Stack) connectURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", s.cfg.port("CONNECT_PORT"))
}

// connectREST is Kafka Connect's REST API, logged in as its one user.
func (s *Stack) connectREST() *debezium.Client {
	c := debezium.NewClient(s.connectURL(), s.cfg.get("CONNECT_REST_USER"), s.cfg.get("CONNECT_REST_PASSWORD"))
	c.HTTP.Timeout = 10 * time.Second
	return c
}

// connectorState is RUNNING when the connector and all its tasks run, STARTING while Connect
// has not created its tasks yet (or answers 404 for a moment), else the connector's state and
// its tasks'.
func connectorState(st debezium.Status, err error) string {
	switch {
	case err != nil || len(st.Tasks) == 0:
		return "STARTING"
	case st.Running():
		return "RUNNING"
	}
	return st.Connector.State + "," + st.TaskState()
}

// putConfig stores the file's config unless Connect holds exactly that already (a PUT of the
// same config would restart the connector).
func (s *Stack) putConfig(ctx context.Context, f connectorFile) error {
	want := map[string]string{"name": f.Name}
	for k, v := range f.Config {
		want[k] = v
	}
	if have, err := s.connectREST().Config(ctx, f.Name); err == nil && reflect.DeepEqual(have, want) {
		return nil
	}
	return s.connectREST().PutConfig(ctx, f.Name, f.Config)
}

func (s *Stack) red(format string, args ...any) {
	fmt.Fprintf(s.cfg.Err, "\033[1;31m%s\033[0m\n", fmt.Sprintf(format, args...))
}

// RegisterConnectors registers (or updates) the connectors of files (default: every
// connectors/*.json) and waits until each connector and its task are RUNNING.
func (s *Stack) RegisterConnectors(ctx context.Context, files ...string) error {
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join(s.cfg.Root, "connectors", "*.json"))
	}
	timeout := 120 * time.Second
	if n, err := strconv.Atoi(s.cfg.get("CONNECTOR_TIMEOUT")); err == nil && n > 0 {
		timeout = time.Duration(n) * time.Second
	}
	logs := filepath.Join(s.cfg.StackDir, "logs", "connect.log")
	url, connect := s.connectURL(), s.connectREST()
	// Connect's REST server answers before the worker has joined its group: wait until it lists connectors.
	if !s.await("Kafka Connect to serve requests on "+url, timeout, func() bool {
		_, err := connect.Connectors(ctx)
		return err == nil
	}) {
		if _, err := connect.Connectors(ctx); errors.Is(err, debezium.ErrUnauthorized) {
			return fmt.Errorf("Kafka Connect on %s refuses the login %s (401): CONNECT_REST_PASSWORD is not the password of .stack/connect/rest-users.properties (restart it: scripts/down.sh connect; make up)", url, s.cfg.get("CONNECT_REST_USER"))
		}
		return fmt.Errorf("Kafka Connect does not serve requests on %s (log: %s); is it running (make status)?", url, logs)
	}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var f connectorFile
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		db, pub := f.Config["database.dbname"], f.Config["publication.name"]
		// The publication belongs to the service's schema (its messaging migration creates it).
		if ok, err := s.pgAdmin().HasPublication(ctx, db, pub); err != nil || !ok {
			return fmt.Errorf("%s has no publication %s yet: start the service that owns %s first (it migrates its database)", db, pub, db)
		}
		var putErr error
		if !s.await("Kafka Connect to accept the config of "+f.Name, timeout, func() bool { putErr = s.putConfig(ctx, f); return putErr == nil }) {
			return fmt.Errorf("Kafka Connect refused %s (log: %s): %w", path, logs, putErr)
		}
		if err := s.awaitConnector(ctx, f.Name, db, timeout, logs); err != nil {
			return err
		}
	}
	return nil
}

// awaitConnector waits until connector name runs; a FAILED task is restarted once, loudly (a
// failure is often one that a configuration change just fixed); one that fails again is an
// error with the cause.
func (s *Stack) awaitConnector(ctx context.Context, name, db string, timeout time.Duration, logs string) error {
	t0 := time.Now()
	var restartedAt time.Time
	connect := s.connectREST()
	trace := func() {
		if st, err := connect.Status(ctx, name); err == nil {
			for _, l := range st.Causes(6) {
				s.red("      %s", l)
			}
		}
	}
	for {
		state := connectorState(connect.Status(ctx, name))
		if state == "RUNNING" {
			break
		}
		failed := strings.Contains(state, "FAILED")
		switch {
		case failed && restartedAt.IsZero():
			s.out.end("\033[1;31mconnector %s is %s: restarting its failed tasks\033[0m", name, state)
			trace()
			_ = connect.RestartFailed(ctx, name)
			restartedAt = time.Now()
		case failed && time.Since(restartedAt) > 15*time.Second:
			s.out.end("\033[1;31mconnector %s FAILED again after the restart:\033[0m", name)
			trace()
			return fmt.Errorf("connector %s does not run: events of %s are not streamed until this is fixed (full trace: GET %s/connectors/%s/status; log: %s)", name, db, s.connectURL(), name, logs)
		case time.Since(t0) > timeout:
			s.out.end("connector %s is %s", name, state)
			trace()
			return fmt.Errorf("connector %s is %s after %ss (log: %s)", name, state, since(t0), logs)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.out.progress("waiting for connector %s ... %s %ss", name, state, since(t0))
		time.Sleep(500 * time.Millisecond)
	}
	s.out.end("connector %-20s RUNNING (task RUNNING)", name)
	return nil
}
