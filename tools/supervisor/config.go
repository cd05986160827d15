package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"outboxsaga.dev/stack"
)

// The configuration files the supervisor writes before a start: Kafka Connect's and
// Prometheus's and Alertmanager's. Everything is written as scripts/lib.sh writes (files 0600,
// directories 0700), then opened to the stack's OS user (RUN_USER, RUN_GROUP: the group may
// enter the directories and read the files a process of that user needs; its data directories
// are that user's).

// secret returns the stack's secret name (the first line of .stack/secrets/<name>).
func (s *Stack) secret(name string) string {
	raw, _ := os.ReadFile(filepath.Join(s.cfg.StackDir, "secrets", name))
	line, _, _ := strings.Cut(string(raw), "\n")
	return line
}

// writeSecret writes content to path, replaced whole with mode 0600 (never through a link).
func writeSecret(path, content string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// runGID returns the stack's OS group's id; false when the stack runs as the user running us.
func (s *Stack) runGID() (int, bool, error) {
	if s.cfg.get("RUN_USER") == "" {
		return 0, false, nil
	}
	g, err := user.LookupGroup(s.cfg.get("RUN_GROUP"))
	if err != nil {
		return 0, false, fmt.Errorf("OS group of the stack: %w", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	return gid, true, nil
}

// openTo gives the stack's OS group mode on paths (root's): 0710 lets it enter a directory, not
// list it; 0640 read a file.
func (s *Stack) openTo(mode os.FileMode, paths ...string) error {
	gid, ok, err := s.runGID()
	if err != nil || !ok {
		return err
	}
	for _, p := range paths {
		if err := os.Lchown(p, -1, gid); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
	}
	return nil
}

// ownedByRunUser makes dir and everything in it the stack's OS user's (0700), unless it is that
// user's already: then we touch nothing in it (a link there leads us nowhere).
func (s *Stack) ownedByRunUser(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	gid, ok, err := s.runGID()
	if err != nil || !ok {
		return err
	}
	u, err := user.Lookup(s.cfg.get("RUN_USER"))
	if err != nil {
		return fmt.Errorf("OS user of the stack: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			return fmt.Errorf("give %s to %s: %w", dir, s.cfg.get("RUN_USER"), err)
		}
	}
	return os.Chmod(dir, 0o700)
}

// configureConnect writes the worker's configuration (with its own Kafka login, in this file
// and in no environment), the REST API's users' file and the JAAS file that names it.
func (s *Stack) configureConnect() error {
	dir, conf := filepath.Join(s.cfg.StackDir, "connect"), s.cfg.get("CONNECT_CONF")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	base, err := os.ReadFile(filepath.Join(s.cfg.Root, "infra/connect/connect-distributed.properties"))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.Write(base)
	fmt.Fprintf(&b, "bootstrap.servers=%s:%d\n", s.cfg.get("KAFKA_HOST"), s.cfg.port("KAFKA_PORT"))
	fmt.Fprintf(&b, "listeners=http://127.0.0.1:%d\nrest.advertised.host.name=127.0.0.1\n", s.cfg.port("CONNECT_PORT"))
	fmt.Fprintf(&b, "plugin.path=%s\n", filepath.Join(s.cfg.StackDir, "lib", "plugins"))
	jaas := fmt.Sprintf(`org.apache.kafka.common.security.scram.ScramLoginModule required username="connect" password="%s";`, s.secret("kafka-connect"))
	for _, prefix := range []string{"", "producer.", "consumer.", "admin."} {
		fmt.Fprintf(&b, "%ssasl.jaas.config=%s\n", prefix, jaas)
	}
	users, jaasFile := filepath.Join(dir, "rest-users.properties"), filepath.Join(dir, "rest-jaas.conf")
	restUser := s.cfg.get("CONNECT_REST_USER")
	for path, content := range map[string]string{
		conf: b.String(),
		// The REST API's users (HTTP Basic, rest.extension.classes in the properties above):
		// the login module reads user=password lines from this file; the JAAS file names it.
		users:    restUser + "=" + s.secret("connect-rest-"+restUser) + "\n",
		jaasFile: "KafkaConnect {\n  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required\n  file=\"" + users + "\";\n};\n",
	} {
		if err := writeSecret(path, content); err != nil {
			return fmt.Errorf("configure connect: %w", err)
		}
	}
	if err := s.openTo(0o710, dir); err != nil {
		return err
	}
	return s.openTo(0o640, conf, users, jaasFile)
}

var placeholder = regexp.MustCompile(`(?m)^[^#\n]*@[A-Z_]*@`)

// configureMonitor renders name's configuration from infra/prometheus (every @NAME@ replaced
// by this stack's value), checks it (promtool, amtool) and opens its directories to the
// stack's OS user. It reports whether the configuration changed.
func (s *Stack) configureMonitor(name string) (bool, error) {
	dir := filepath.Join(s.cfg.StackDir, name)
	for _, d := range []string{filepath.Join(dir, "data"), filepath.Join(s.cfg.StackDir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return false, err
		}
	}
	conf, tmpl := s.cfg.get("PROMETHEUS_CONF"), "prometheus.yml"
	check := []string{"promtool", "check", "config", conf}
	if name == "alertmanager" {
		conf, tmpl = s.cfg.get("ALERTMANAGER_CONF"), "alertmanager.yml"
		check = []string{"amtool", "check-config", conf}
	}
	raw, err := os.ReadFile(filepath.Join(s.cfg.Root, "infra/prometheus", tmpl))
	if err != nil {
		return false, err
	}
	pairs := []string{
		"@RULES_DIR@", filepath.Join(s.cfg.Root, "infra/prometheus/rules"),
		"@ALERTMANAGER_ADDR@", fmt.Sprintf("127.0.0.1:%d", s.cfg.port("ALERTMANAGER_PORT")),
		"@PROMETHEUS_ADDR@", fmt.Sprintf("127.0.0.1:%d", s.cfg.port("PROMETHEUS_PORT")),
		"@RELAY_URL@", s.cfg.get("NOTIFICATION_URL") + "/alertmanager",
		"@RELAY_TOKEN_FILE@", filepath.Join(s.cfg.StackDir, "alertmanager", "relay.token"),
	}
	for _, p := range stack.Programs() {
		pairs = append(pairs, "@"+p.Env()+"_TARGETS@", "'"+strings.Join(s.scrapeTargets(p), "', '")+"'")
	}
	text := strings.NewReplacer(pairs...).Replace(string(raw))
	if l := placeholder.FindString(text); l != "" {
		return false, fmt.Errorf("infra/prometheus/%s: a placeholder has no value: %s", tmpl, l)
	}
	old, _ := os.ReadFile(conf)
	changed := string(old) != text
	if changed {
		if err := writeSecret(conf+".new", text); err != nil {
			return false, err
		}
		if err := os.Rename(conf+".new", conf); err != nil {
			return false, err
		}
	}
	if name == "alertmanager" {
		if err := s.relayToken(); err != nil {
			return false, err
		}
	}
	checkLog := filepath.Join(s.cfg.StackDir, "logs", name+"-check.log")
	out, err := exec.Command(check[0], check[1:]...).CombinedOutput()
	_ = os.WriteFile(checkLog, out, 0o600)
	if err != nil {
		fmt.Fprintf(s.cfg.Err, "%s", out)
		return false, fmt.Errorf("%s's configuration is invalid (%s): %w", name, strings.Join(check, " "), err)
	}
	if err := s.openTo(0o710, dir); err != nil {
		return false, err
	}
	if err := s.openTo(0o640, conf); err != nil {
		return false, err
	}
	return changed, s.ownedByRunUser(filepath.Join(dir, "data"))
}

// relayToken writes .stack/alertmanager/relay.token, the operator token Alertmanager calls the
// relay with (its credentials_file): a copy of .stack/admin-token that the user it runs as may
// read (0640, the group of .stack: the stack's OS user's when root runs the stack), replaced whole.
func (s *Stack) relayToken() error {
	raw, err := os.ReadFile(filepath.Join(s.cfg.StackDir, "admin-token"))
	if err != nil {
		return fmt.Errorf("relay token: %w", err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := filepath.Join(s.cfg.StackDir, "alertmanager", "relay.token")
	if err := writeSecret(f+".new", line+"\n"); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(s.cfg.StackDir, &st); err != nil {
		return err
	}
	if err := os.Lchown(f+".new", -1, int(st.Gid)); err != nil {
		return err
	}
	if err := os.Chmod(f+".new", 0o640); err != nil {
		return err
	}
	return os.Rename(f+".new", f)
}

// configureKafka writes the single-node broker's configuration and formats its storage on
// first use (configureKafkaBroker).
func (s *Stack) configureKafka(ctx context.Context) error {
	return s.configureKafkaBroker(ctx, nil, filepath.Join(s.cfg.StackDir, "kafka"), s.cfg.get("KAFKA_CONF"))
}

// configureKafkaBroker writes a broker's configuration into conf (with the admin's password: 0600,
// opened to the stack's OS group only to read) and, on first use, formats its storage in dir/data
// with the admin's SCRAM login, the one login the broker needs before any client can log in.
// n is nil for the single node (a standalone quorum, a fresh cluster id); a node of the cluster
// gets the cluster's overrides (infra/kafka/cluster.properties), its id, the quorum's voters and
// the cluster's one id.
func (s *Stack) configureKafkaBroker(ctx context.Context, n *kafkaNode, dir, conf string) error {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	for _, d := range []string{dir, data} {
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	files := []string{"infra/kafka/server.properties"}
	if n != nil {
		files = append(files, "infra/kafka/cluster.properties")
	}
	var b bytes.Buffer
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(s.cfg.Root, f))
		if err != nil {
			return err
		}
		b.Write(raw)
	}
	host, pw := s.cfg.get("KAFKA_HOST"), s.secret("kafka-admin")
	broker, controller := fmt.Sprintf("%s:%d", host, s.cfg.port("KAFKA_PORT")), fmt.Sprintf("%s:%d", host, s.cfg.port("KAFKA_CONTROLLER_PORT"))
	quorum := "controller.quorum.bootstrap.servers=" + controller
	if n != nil {
		broker, controller = s.brokerAddr(*n), fmt.Sprintf("%s:%d", host, n.ControllerPort)
		var voters []string
		for _, v := range s.kafkaNodes() {
			voters = append(voters, fmt.Sprintf("%d@%s:%d", v.ID, host, v.ControllerPort))
		}
		quorum = "controller.quorum.voters=" + strings.Join(voters, ",")
		fmt.Fprintf(&b, "\n# node %d of the cluster (tools/supervisor/cluster.go)\nnode.id=%d\n", n.ID, n.ID)
	}
	fmt.Fprintf(&b, "log.dirs=%s\n", data)
	fmt.Fprintf(&b, "listeners=BROKER://%s,CONTROLLER://%s\nadvertised.listeners=BROKER://%s\n", broker, controller, broker)
	fmt.Fprintln(&b, quorum)
	fmt.Fprintf(&b, "listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"%s\";\n", pw)
	fmt.Fprintf(&b, "listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"%s\" user_admin=\"%s\";\n", pw, pw)
	// kcat's logins (see infra/kafka/server.properties): the same principals and passwords as
	// their SCRAM logins, so the same ACLs.
	fmt.Fprintf(&b, "listener.name.broker.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_viewer=\"%s\" user_injector=\"%s\";\n",
		s.secret("kafka-viewer"), s.secret("kafka-injector"))
	if err := writeSecret(conf, b.String()); err != nil {
		return fmt.Errorf("configure kafka (%s): %w", conf, err)
	}
	if _, err := os.Stat(filepath.Join(data, "meta.properties")); os.IsNotExist(err) {
		if err := s.formatKafka(ctx, n, conf, data, pw); err != nil {
			return err
		}
	}
	if err := s.openTo(0o710, dir); err != nil {
		return err
	}
	if err := s.openTo(0o640, conf); err != nil {
		return err
	}
	return s.ownedByRunUser(data)
}

// formatKafka formats a broker's storage: the single node (n nil) as a standalone quorum with a
// fresh id, a node of the cluster for the static quorum of controller.quorum.voters with the
// cluster's id. The arguments, password included, go through a java @argfile (0600, deleted
// after), so that no command line shows the password.
func (s *Stack) formatKafka(ctx context.Context, n *kafkaNode, conf, data, pw string) error {
	var idArgs []string
	where := strings.TrimPrefix(data, s.cfg.Root+"/")
	if n == nil {
		id, err := s.kafkaTool(ctx, "kafka.tools.StorageTool", "random-uuid").Output()
		if err != nil {
			return fmt.Errorf("a cluster id for Kafka: %w", err)
		}
		idArgs = []string{"--standalone", "--cluster-id", strings.TrimSpace(string(id))}
		s.out.say("formatting Kafka storage in %s (with the admin's SCRAM login)", where)
	} else {
		id, err := s.clusterID(ctx)
		if err != nil {
			return err
		}
		idArgs = []string{"--cluster-id", id}
		s.out.say("formatting Kafka node %d's storage in %s (cluster %s, with the admin's SCRAM login)", n.ID, where, id)
	}
	args := filepath.Join(filepath.Dir(conf), "format.args")
	lines := append(append([]string{"kafka.tools.StorageTool", "format", "--config", conf}, idArgs...),
		"--add-scram", "SCRAM-SHA-512=[name=admin,password="+pw+"]")
	if err := writeSecret(args, strings.Join(lines, "\n")+"\n"); err != nil {
		return err
	}
	defer os.Remove(args)
	cmd := s.kafkaTool(ctx, "@"+args)
	cmd.Stderr = s.cfg.Err
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("formatting the Kafka storage of %s failed: %w", conf, err)
	}
	return nil
}
