package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"outboxsaga.dev/stack"
)

// Report writes make status's screen: each process (pid, RSS), each service's /readyz, each
// connector and task state, each replication slot's lag (a slot that no connector of
// connectors/*.json owns is red), each consumer group's lag (read as the read-only principal
// viewer), the alerts pending or firing in Prometheus.
func (s *Stack) Report(ctx context.Context, w io.Writer) {
	red := func(format string, args ...any) {
		fmt.Fprintf(w, "\033[1;31m%s\033[0m\n", fmt.Sprintf(format, args...))
	}
	fmt.Fprintln(w, "PROCESSES")
	s.Status(w)

	fmt.Fprintln(w, "\nSERVICES (/readyz: ready, degraded = up but its CDC path is not streaming, unavailable)")
	for _, p := range stack.SagaServices() {
		url := s.cfg.get(p.URLVar)
		raw, err := httpGet(ctx, url+"/readyz", 3*time.Second, nil)
		var body struct {
			Status   string                     `json:"status"`
			Failed   map[string]json.RawMessage `json:"failed"`
			Degraded map[string]json.RawMessage `json:"degraded"`
		}
		if len(raw) == 0 || json.Unmarshal(raw, &body) != nil {
			red("  %-13s not answering on %s (%v)", p.Name, url, err)
			continue
		}
		var problems []string
		for _, m := range []map[string]json.RawMessage{body.Failed, body.Degraded} {
			for k, v := range m {
				var str string
				if json.Unmarshal(v, &str) != nil {
					str = string(v)
				}
				problems = append(problems, k+": "+str)
			}
		}
		sort.Strings(problems)
		line := fmt.Sprintf("  %-13s %s", p.Name, body.Status)
		if len(problems) == 0 {
			fmt.Fprintln(w, line)
			continue
		}
		red("%s", line)
		for _, pr := range problems {
			red("      %s", pr)
		}
	}

	fmt.Fprintf(w, "\nCONNECTORS (%s)\n", s.connectURL())
	if names, err := s.connectREST().Connectors(ctx); err != nil {
		fmt.Fprintln(w, "  Kafka Connect not reachable")
	} else {
		sort.Strings(names)
		for _, n := range names {
			st, err := s.connectREST().Status(ctx, n)
			if err != nil {
				red("  %s  %v", n, err)
				continue
			}
			var tasks []string
			for _, t := range st.Tasks {
				task := fmt.Sprintf("%d:%s", t.ID, t.State.State)
				if s.clusterMode() && t.WorkerID != "" { // which of the workers runs it
					task += "@" + t.WorkerID
				}
				tasks = append(tasks, task)
			}
			line := fmt.Sprintf("  %s  connector=%s  tasks=%s", n, st.Connector.State, strings.Join(tasks, ","))
			if st.Running() {
				fmt.Fprintln(w, line)
				continue
			}
			red("%s", line)
			for _, l := range st.Causes(3) {
				red("      %s", l)
			}
		}
		if len(names) == 0 {
			fmt.Fprintln(w, "  none registered (run: make connectors)")
		}
	}

	fmt.Fprintln(w, "\nREPLICATION SLOTS (lag = current WAL − confirmed flush; retained = current WAL − restart)")
	// The slots the connectors own; any other slot is a copy of a database's changes that nobody
	// watches (e.g. a test_decoding slot made with a connector's role): red, with its plugin.
	owned := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(s.cfg.Root, "connectors", "*.json"))
	for _, f := range files {
		var c connectorFile
		if raw, err := os.ReadFile(f); err == nil && json.Unmarshal(raw, &c) == nil {
			owned[c.Config["slot.name"]] = true
		}
	}
	if slots, err := s.pgAdmin().Slots(ctx); err != nil {
		fmt.Fprintln(w, "  PostgreSQL not reachable")
	} else {
		fmt.Fprintf(w, "  %-20s %-16s %-7s %-10s %-10s %s\n", "SLOT", "DATABASE", "ACTIVE", "LAG", "RETAINED", "WAL_STATUS")
		for _, sl := range slots {
			active := "f"
			if sl.Active {
				active = "t"
			}
			line := fmt.Sprintf("  %-20s %-16s %-7s %-10s %-10s %s", sl.Name, sl.Database, active, sl.Lag, sl.Retained, sl.WALStatus)
			switch {
			case !owned[sl.Name]:
				red("%s   not a connector's (%s slot, plugin %s): drop it unless you know whose it is", line, sl.Type, sl.Plugin)
			case sl.Active && sl.WALStatus != "lost" && sl.WALStatus != "unreserved":
				fmt.Fprintln(w, line)
			default:
				red("%s", line)
			}
		}
	}

	fmt.Fprintln(w, "\nCONSUMER GROUPS")
	s.consumerGroups(ctx, w)

	prom, am := s.cfg.get("PROMETHEUS_URL"), s.cfg.get("ALERTMANAGER_URL")
	fmt.Fprintf(w, "\nALERTS (Prometheus %s/alerts, Alertmanager %s)\n", prom, am)
	if raw, err := httpGet(ctx, prom+"/api/v1/alerts", 3*time.Second, nil); err != nil {
		fmt.Fprintln(w, "  Prometheus not reachable (make up starts it)")
	} else {
		var body struct {
			Data struct {
				Alerts []struct {
					State       string            `json:"state"`
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"alerts"`
			} `json:"data"`
		}
		_ = json.Unmarshal(raw, &body)
		seen := map[string]bool{}
		var lines []string
		for _, a := range body.Data.Alerts {
			l := fmt.Sprintf("%s\t%s\t%s", a.State, a.Labels["alertname"], a.Annotations["summary"])
			if !seen[l] {
				seen[l] = true
				lines = append(lines, l)
			}
		}
		sort.Strings(lines)
		if len(lines) == 0 {
			fmt.Fprintln(w, "  none firing or pending")
		}
		for _, l := range lines {
			f := strings.SplitN(l, "\t", 3)
			line := fmt.Sprintf("  %-8s %-26s %s", f[0], f[1], f[2])
			if f[0] == "firing" {
				red("%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
	fmt.Fprintf(w, "\nMORE: the console %s (operator token); traces: make traces (Zipkin on 127.0.0.1:%d); contracts: schemas/openapi/, schemas/asyncapi.yaml\n",
		s.cfg.get("CONSOLE_URL"), stack.ZipkinPort+s.offset())
}

// offset is STACK_PORT_OFFSET.
func (s *Stack) offset() int { n, _ := strconv.Atoi(s.cfg.get("STACK_PORT_OFFSET")); return n }

// consumerGroups writes each consumer group's lag (Kafka's ConsumerGroupCommand as the viewer).
func (s *Stack) consumerGroups(ctx context.Context, w io.Writer) {
	if exec.CommandContext(ctx, "kcat", "-F", s.cfg.get("KCAT_CONF"), "-L", "-m", "2").Run() != nil {
		fmt.Fprintln(w, "  Kafka not reachable")
		return
	}
	bootstrap := fmt.Sprintf("%s:%d", s.cfg.get("KAFKA_HOST"), s.cfg.port("KAFKA_PORT"))
	cmd := exec.CommandContext(ctx, "java", "-Xmx256m", "-Dlog4j2.configurationFile="+filepath.Join(s.cfg.Root, "infra/kafka/log4j2-tools.properties"),
		"-cp", s.classpath(), "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", bootstrap,
		"--command-config", filepath.Join(s.cfg.StackDir, "secrets", "kafka-viewer.properties"), "--describe", "--all-groups")
	out, _ := cmd.Output()
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "Consumer" {
			continue
		}
		for len(f) < 6 {
			f = append(f, "")
		}
		line := fmt.Sprintf("  %-20s %-18s %-4s %-8s %-8s %s", f[0], f[1], f[2], f[3], f[4], f[5])
		if !seen[line] {
			seen[line] = true
			fmt.Fprintln(w, line)
		}
	}
}
