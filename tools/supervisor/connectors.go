package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
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

// connectorStatus is GET /connectors/{name}/status.
type connectorStatus struct {
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
}

// state: RUNNING when the connector and all its tasks run, else what they are (STARTING while
// Connect has not created them yet).
func (st connectorStatus) state() string {
	if len(st.Tasks) == 0 {
		return "STARTING"
	}
	set := map[string]bool{st.Connector.State: true}
	for _, t := range st.Tasks {
		set[t.State] = true
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

var traceLine = regexp.MustCompile(`^[A-Za-z].*(Exception|Error)|^Caused by`)

// causes: the first n lines of the traces that say what failed (not Connect's wrapper).
func (st connectorStatus) causes(n int) []string {
	var out []string
	for _, tr := range append([]string{st.Connector.Trace}, func() []string {
		var t []string
		for _, task := range st.Tasks {
			t = append(t, task.Trace)
		}
		return t
	}()...) {
		for _, l := range strings.Split(tr, "\n") {
			if traceLine.MatchString(l) && len(out) < n {
				out = append(out, l)
			}
		}
	}
	return out
}

func (s *Stack) connectURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", s.cfg.port("CONNECT_PORT"))
}

// rest makes a call to Kafka Connect's REST API as its user; an answer that is not 2xx is an
// error (Connect answers 409 during a rebalance and 500 while its herder cannot reach Kafka:
// callers retry). It returns the status code too.
func (s *Stack) rest(ctx context.Context, method, path string, body []byte) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.connectURL()+path, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.SetBasicAuth(s.cfg.get("CONNECT_REST_USER"), s.cfg.get("CONNECT_REST_PASSWORD"))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, res.StatusCode, err
	}
	if res.StatusCode/100 != 2 {
		return raw, res.StatusCode, fmt.Errorf("%s %s: %s", method, path, res.Status)
	}
	return raw, res.StatusCode, nil
}

func (s *Stack) connectorStatus(ctx context.Context, name string) (connectorStatus, error) {
	var st connectorStatus
	raw, _, err := s.rest(ctx, http.MethodGet, "/connectors/"+name+"/status", nil)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(raw, &st)
}

// putConfig stores the file's config unless Connect holds exactly that already.
func (s *Stack) putConfig(ctx context.Context, f connectorFile) error {
	want := map[string]string{"name": f.Name}
	for k, v := range f.Config {
		want[k] = v
	}
	if raw, _, err := s.rest(ctx, http.MethodGet, "/connectors/"+f.Name+"/config", nil); err == nil {
		var have map[string]string
		if json.Unmarshal(raw, &have) == nil && reflect.DeepEqual(have, want) {
			return nil
		}
	}
	body, err := json.Marshal(f.Config)
	if err != nil {
		return err
	}
	_, _, err = s.rest(ctx, http.MethodPut, "/connectors/"+f.Name+"/config", body)
	return err
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
	url := s.connectURL()
	// Connect's REST server answers before the worker has joined its group: wait until it lists connectors.
	if !s.await("Kafka Connect to serve requests on "+url, timeout, func() bool {
		_, _, err := s.rest(ctx, http.MethodGet, "/connectors", nil)
		return err == nil
	}) {
		if _, code, _ := s.rest(ctx, http.MethodGet, "/connectors", nil); code == http.StatusUnauthorized {
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
	trace := func() {
		if st, err := s.connectorStatus(ctx, name); err == nil {
			for _, l := range st.causes(6) {
				s.red("      %s", l)
			}
		}
	}
	for {
		st, err := s.connectorStatus(ctx, name)
		state := "STARTING" // status answers 404 for a moment
		if err == nil {
			state = st.state()
		}
		if state == "RUNNING" {
			break
		}
		failed := strings.Contains(state, "FAILED")
		switch {
		case failed && restartedAt.IsZero():
			s.out.end("\033[1;31mconnector %s is %s: restarting its failed tasks\033[0m", name, state)
			trace()
			_, _, _ = s.rest(ctx, http.MethodPost, "/connectors/"+name+"/restart?includeTasks=true&onlyFailed=true", nil)
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
