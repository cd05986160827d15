package e2e

// The stack's trust boundaries as a user of the host meets them (docs/architecture.md,
// "Credentials and roles"): the secrets' and data directories' modes, PostgreSQL's refusal of
// physical replication and of a well-known password, kcat with .stack/kcat.conf, Kafka Connect's
// REST API without its login, the secrets each process holds, the connectors' override policy,
// a base backup showing at once, the injector turned off, root writing nothing in the cluster's
// directory, and every component as an unprivileged OS user. They read files and processes of
// the host, and run as root when the stack does (make test); they were scripts/trust-test.sh.

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStackDirectoryIsClosed: .stack is 0700, or 0710 root:<the stack's group> when root runs the
// stack (its OS user may enter it, not list it).
func TestStackDirectoryIsClosed(t *testing.T) {
	h := theHost(t)
	mode, owner, group := modeOf(t, h.Stack)
	if h.RunUser != "" {
		if mode != 0o710 || owner != "root" || group != h.RunGroup {
			t.Errorf("%s is %o %s:%s, want 710 root:%s", h.Stack, mode, owner, group, h.RunGroup)
		}
	} else if mode != 0o700 {
		t.Errorf("%s is %o, want 700", h.Stack, mode)
	}
}

// TestSecretsDirectoryIsOurs: .stack/secrets is 0700 and belongs to whoever runs the stack (root
// keeps the secrets; a component gets its own through its environment).
func TestSecretsDirectoryIsOurs(t *testing.T) {
	h := theHost(t)
	if mode, owner, _ := modeOf(t, h.Secrets); mode != 0o700 || owner != whoami(t) {
		t.Errorf("%s is %o %s's, want 700 %s's", h.Secrets, mode, owner, whoami(t))
	}
}

// TestSecretFilesAre0600: the operator token, the headers, kcat.conf, connect.curlrc,
// connect-credentials and every file of .stack/secrets are 0600.
func TestSecretFilesAre0600(t *testing.T) {
	h := theHost(t)
	headers, _ := filepath.Glob(filepath.Join(h.Stack, "*.header"))
	secrets, _ := filepath.Glob(filepath.Join(h.Secrets, "*"))
	files := append([]string{filepath.Join(h.Stack, "admin-token"), filepath.Join(h.Stack, "connect.curlrc"),
		filepath.Join(h.Stack, "kcat.conf"), filepath.Join(h.Stack, "connect-credentials")}, headers...)
	files = append(files, secrets...)
	n := 0
	for _, f := range files {
		fi, err := os.Lstat(f)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		n++
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s is %o, want 600", f, mode)
		}
	}
	if n < 10 {
		t.Errorf("only %d secret files found in %s: is the stack up?", n, h.Stack)
	}
}

// TestPasswordsInConfigsAreClosed: the broker's configuration, the worker's and its REST users
// (they hold passwords) are 0600, or 0640 root:<the stack's group> when root runs the stack (the
// broker and the worker read them as its OS user).
func TestPasswordsInConfigsAreClosed(t *testing.T) {
	h := theHost(t)
	for _, f := range []string{"kafka/server.properties", "connect/connect-distributed.properties", "connect/rest-users.properties"} {
		mode, owner, group := modeOf(t, filepath.Join(h.Stack, f))
		if h.RunUser != "" {
			if mode != 0o640 || owner != "root" || group != h.RunGroup {
				t.Errorf("%s is %o %s:%s, want 640 root:%s", f, mode, owner, group, h.RunGroup)
			}
		} else if mode != 0o600 {
			t.Errorf("%s is %o, want 600", f, mode)
		}
	}
}

// TestAdminTokenIsOneRandomLine: .stack/admin-token is one line of a 32-character token.
func TestAdminTokenIsOneRandomLine(t *testing.T) {
	h := theHost(t)
	raw, err := os.ReadFile(filepath.Join(h.Stack, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(raw), "\n") != 1 || len(raw) < 33 {
		t.Errorf("admin-token is %d bytes in %d lines, want one line of 32 characters", len(raw), strings.Count(string(raw), "\n"))
	}
}

// TestDataDirectoriesAreNobodyElses: PostgreSQL's data, Kafka's and Connect's directories give
// their group and the others nothing but, for a directory the stack's OS user enters, x.
func TestDataDirectoriesAreNobodyElses(t *testing.T) {
	h := theHost(t)
	for _, d := range []string{filepath.Join(h.PGDir, "data"), filepath.Join(h.Stack, "kafka", "data"), filepath.Join(h.Stack, "connect")} {
		t.Run(filepath.Base(filepath.Dir(d))+"/"+filepath.Base(d), func(t *testing.T) {
			if mode, _, _ := modeOf(t, d); mode&0o067 != 0 {
				t.Errorf("%s is %o: others may read it", d, mode)
			}
		})
	}
}

// TestKafkaDataIsTheStackUsers: run as root, Kafka's data directory belongs to the stack's OS
// user (which writes only its components' data directories).
func TestKafkaDataIsTheStackUsers(t *testing.T) {
	h := theHost(t)
	if h.RunUser == "" {
		t.Skip("the stack runs as its starter, not as an OS user of its own (not root)")
	}
	if _, owner, _ := modeOf(t, filepath.Join(h.Stack, "kafka", "data")); owner != h.RunUser {
		t.Errorf("Kafka's data is %s's, want %s's", owner, h.RunUser)
	}
}

// TestNothingIsWorldReadable: no file or directory under .stack and the cluster's directory is
// readable by others.
func TestNothingIsWorldReadable(t *testing.T) {
	h := theHost(t)
	for _, top := range []string{h.Stack, h.PGDir} {
		err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone meanwhile (a log rotated, a socket)
			}
			if !d.Type().IsRegular() && !d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err == nil && fi.Mode().Perm()&0o004 != 0 {
				t.Errorf("%s is world-readable (%o)", path, fi.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPgHbaHasNoReplicationLine: pg_hba.conf lets no role open a physical replication connection.
func TestPgHbaHasNoReplicationLine(t *testing.T) {
	h := theHost(t)
	out, err := asPGUser("", "cat", filepath.Join(h.PGDir, "data", "pg_hba.conf"))
	if err != nil {
		t.Fatalf("read pg_hba.conf: %v %s", err, out)
	}
	word := regexp.MustCompile(`\breplication\b`)
	for _, line := range strings.Split(out, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && word.MatchString(l) {
			t.Errorf("pg_hba.conf has a replication line: %s", l)
		}
	}
}

// TestDebeziumRolesCannotReplicatePhysically: a physical replication connection (what
// pg_basebackup needs) of every Debezium role is refused by pg_hba.conf.
func TestDebeziumRolesCannotReplicatePhysically(t *testing.T) {
	h := theHost(t)
	for _, svc := range sagaServices {
		t.Run("debezium_"+svc, func(t *testing.T) {
			role := "debezium_" + svc
			out, err := h.psql(h.secretFile(t, "pg-"+role), h.conninfo(role, svc+"_db", "replication=true"), "-c", "IDENTIFY_SYSTEM")
			switch {
			case err == nil:
				t.Errorf("%s opened a physical replication connection: %s", role, out)
			case !strings.Contains(out, "no pg_hba.conf entry for replication connection"):
				t.Errorf("%s: physical replication failed for another reason: %s", role, out)
			}
		})
	}
}

// TestSuperuserPasswordIsNotPostgres: the well-known password postgres does not log the
// superuser in.
func TestSuperuserPasswordIsNotPostgres(t *testing.T) {
	h := theHost(t)
	out, err := h.psql("postgres", h.conninfo(env("PG_SUPERUSER", "postgres"), "postgres"), "-c", "select 1")
	if err == nil {
		t.Fatal("the superuser logged in with the password postgres")
	}
	if !strings.Contains(out, "password authentication failed") {
		t.Errorf("the superuser's login failed for another reason: %s", out)
	}
}

// TestKcatConfReadsOrderEvents: `kcat -F .stack/kcat.conf -C -t order-events` as typed in the
// README (plus -e -c 1, to end after one record) reads a record: the viewer's login works.
func TestKcatConfReadsOrderEvents(t *testing.T) {
	h := theHost(t)
	conf, err := filepath.Rel(h.Root, filepath.Join(h.Stack, "kcat.conf"))
	if err != nil {
		conf = filepath.Join(h.Stack, "kcat.conf")
	}
	out, err := run(h.Root, "", nil, 30*time.Second, "kcat", "-F", conf, "-C", "-t", "order-events", "-f", `%k %h %s\n`, "-o", "beginning", "-e", "-c", "1")
	if err != nil || !strings.Contains(out, "eventType=") {
		t.Errorf("kcat -F %s -C -t order-events read no record: %v %.300s", conf, err, out)
	}
}

// kcatReadsNothing fails t when kcat with args reads a record of order-events: it must exit
// with an error, or print nothing but an error.
func kcatReadsNothing(t *testing.T, who string, args ...string) {
	t.Helper()
	out, err := run("", "", nil, 20*time.Second, "kcat", append(args, "-C", "-t", "order-events", "-o", "beginning", "-e", "-c", "1", "-m", "5")...)
	if err == nil && strings.TrimSpace(out) != "" && !regexp.MustCompile(`(?i)error|fail|disconnect|timed out|authenticat`).MatchString(out) {
		t.Errorf("kcat %s read: %.200s", who, out)
	}
}

// TestKcatWithoutALoginReadsNothing: the broker takes no anonymous client.
func TestKcatWithoutALoginReadsNothing(t *testing.T) {
	h := theHost(t)
	kcatReadsNothing(t, "without a login", "-b", h.Brokers[0])
}

// TestKcatWithAWrongPasswordReadsNothing: the viewer's login with another password reads nothing.
func TestKcatWithAWrongPasswordReadsNothing(t *testing.T) {
	h := theHost(t)
	kcatReadsNothing(t, "with a wrong password", "-F", filepath.Join(h.Stack, "kcat.conf"), "-X", "sasl.password=wrong-password")
}

// TestEveryKafkaListenerAuthenticates: the broker's listeners are all SASL, the controller's too.
func TestEveryKafkaListenerAuthenticates(t *testing.T) {
	h := theHost(t)
	m := "," + property(t, filepath.Join(h.Stack, "kafka", "server.properties"), "listener.security.protocol.map") + ","
	if strings.Contains(m, ":PLAINTEXT,") || !strings.Contains(m, ",CONTROLLER:SASL_PLAINTEXT,") {
		t.Errorf("the broker has a listener without authentication: %s", strings.Trim(m, ","))
	}
}

// TestControllerRefusesTheViewer: the controller's listener serves the broker alone: the viewer's
// login (good on the broker's listener) is refused there.
func TestControllerRefusesTheViewer(t *testing.T) {
	h := theHost(t)
	conf := filepath.Join(h.Stack, "kafka", "server.properties")
	var controller string
	for _, l := range strings.Split(property(t, conf, "listeners"), ",") {
		if addr, ok := strings.CutPrefix(strings.TrimSpace(l), "CONTROLLER://"); ok {
			controller = addr
		}
	}
	if controller == "" {
		t.Fatalf("%s names no CONTROLLER listener", conf)
	}
	out, _ := run("", "", nil, 20*time.Second, "kcat", "-F", filepath.Join(h.Stack, "kcat.conf"), "-b", controller, "-L", "-m", "5")
	if !strings.Contains(out, "Invalid username or password") {
		t.Errorf("the controller's listener (%s) did not refuse the viewer's login: %.300s", controller, out)
	}
}

// TestConnectCurlrcAsTyped: `curl -K .stack/connect.curlrc <Connect>/connectors`, as typed in
// the README, answers 200.
func TestConnectCurlrcAsTyped(t *testing.T) {
	h := theHost(t)
	rc, err := filepath.Rel(h.Root, filepath.Join(h.Stack, "connect.curlrc"))
	if err != nil {
		rc = filepath.Join(h.Stack, "connect.curlrc")
	}
	out, err := run(h.Root, "", nil, 15*time.Second, "curl", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", "-K", rc, h.ConnectURL+"/connectors")
	if err != nil || out != "200" {
		t.Errorf("curl -K %s %s/connectors: %s %v, want 200", rc, h.ConnectURL, out, err)
	}
}

// TestConnectCredentialsIsOneLogin: .stack/connect-credentials is one line, operator:<password>
// (for curl -u "$(cat .stack/connect-credentials)").
func TestConnectCredentialsIsOneLogin(t *testing.T) {
	h := theHost(t)
	raw, err := os.ReadFile(filepath.Join(h.Stack, "connect-credentials"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), h.ConnectRESTUser+":") || strings.Count(strings.TrimSuffix(string(raw), "\n"), "\n") != 0 {
		t.Errorf("connect-credentials is not one line %s:<password>", h.ConnectRESTUser)
	}
}

// TestConnectRESTRefusesBadLogins: GET /connectors without credentials, with a wrong or an empty
// password, or as an unknown user, and POST /connectors without credentials answer 401
// (TestConnectRESTNeedsALogin tries every kind of request).
func TestConnectRESTRefusesBadLogins(t *testing.T) {
	h := theHost(t)
	spy := `{"name":"trust-spy","config":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector"}}`
	for _, tc := range []struct {
		name, method string
		body         any
		headers      map[string]string
	}{
		{"GET without credentials", http.MethodGet, nil, nil},
		{"GET with a wrong password", http.MethodGet, nil, basicAuth(h.ConnectRESTUser, "wrong-password")},
		{"GET as an unknown user", http.MethodGet, nil, basicAuth("mallory", h.ConnectRESTPassword)},
		{"GET with an empty password", http.MethodGet, nil, basicAuth(h.ConnectRESTUser, "")},
		{"POST without credentials", http.MethodPost, spy, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, raw := call(t, tc.method, h.ConnectURL+"/connectors", tc.body, tc.headers, nil); code != http.StatusUnauthorized {
				t.Errorf("%s /connectors: %d %.200s, want 401", tc.method, code, raw)
			}
		})
	}
}

// TestConnectRunsBasicAuth: the worker's configuration loads the basic auth REST extension.
func TestConnectRunsBasicAuth(t *testing.T) {
	h := theHost(t)
	conf := filepath.Join(h.Stack, "connect", "connect-distributed.properties")
	if got := property(t, conf, "rest.extension.classes"); got != "org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension" {
		t.Errorf("%s: rest.extension.classes=%q, want the basic auth extension", conf, got)
	}
}

// ownSecrets are the secrets (names of .stack/secrets files, and admin-token) component may hold
// in its environment: the superuser's, an owner's, the REST API's and the injector's passwords and
// the customer tokens' private key are in none.
func ownSecrets(component string) []string {
	switch component {
	case "postgres", "kafka", "alertmanager", "prometheus":
		return nil
	case "connect":
		var s []string
		for _, svc := range sagaServices {
			s = append(s, "pg-debezium_"+svc, "kafka-connect-"+svc)
		}
		return s
	case "gatewaysim":
		return []string{"gateway-merchant"}
	case "webhooksink":
		return []string{"webhook-signing", "webhooksink-reader"}
	case "console":
		// the operator token (the services' operator endpoints), Connect's REST login (restart),
		// the viewer's Kafka login (lag) and its read-only PostgreSQL login (slots)
		return []string{"admin-token", "connect-rest-operator", "kafka-viewer", "pg-console"}
	}
	own := []string{"pg-" + component + "_svc", "kafka-" + component, "admin-token"}
	switch component {
	case "order", "shipping":
		own = append(own, "customer-token-pub")
	case "payment":
		own = append(own, "customer-token-pub", "gateway-merchant")
	case "notification":
		own = append(own, "webhook-signing")
	}
	return own
}

// allSecrets maps the name of every secret of the stack (the files of .stack/secrets but the
// configurations, and admin-token) to its value; values shorter than 16 characters are left out
// (they could match by chance).
func (h host) allSecrets(tb testing.TB) map[string]string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(h.Secrets, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	files = append(files, filepath.Join(h.Stack, "admin-token"))
	all := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, ".conf") || strings.HasSuffix(f, ".properties") {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		if v := strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]); len(v) >= 16 {
			all[filepath.Base(f)] = v
		}
	}
	return all
}

// checkProcess checks what the trust test checks of each process: it runs as an
// unprivileged OS user (root runs the stack), its environment holds its own secrets and no other,
// and no secret is on its command line.
func checkProcess(t *testing.T, component string) {
	h := theHost(t)
	pid := h.pidOf(t, component)
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	t.Run("runs unprivileged", func(t *testing.T) {
		if h.RunUser == "" {
			t.Skip("not root: every component runs as the tests' user")
		}
		want := h.RunUser
		if component == "postgres" {
			want = pgOSUser
		}
		if _, owner, _ := modeOf(t, proc); owner != want {
			t.Errorf("%s (pid %d) runs as %s, want %s", component, pid, owner, want)
		}
	})
	secrets := h.allSecrets(t)
	t.Run("holds only its own secrets", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(proc, "environ"))
		if errors.Is(err, os.ErrPermission) {
			var out string
			out, err = asPGUser("", "cat", filepath.Join(proc, "environ"))
			raw = []byte(out)
		}
		if err != nil {
			t.Fatalf("%s: no environment to read (is it running?): %v", component, err)
		}
		own := ownSecrets(component)
		var held []string
		for name, v := range secrets {
			if strings.Contains(string(raw), v) {
				held = append(held, name)
				if !slices.Contains(own, name) {
					t.Errorf("%s holds a secret not its own: %s", component, name)
				}
			}
		}
		slices.Sort(held)
		t.Logf("%s holds %d secret(s): %v", component, len(held), held)
	})
	t.Run("no secret on its command line", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(proc, "cmdline"))
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range secrets {
			if strings.Contains(string(raw), v) {
				t.Errorf("%s has the secret %s on its command line", component, name)
			}
		}
	})
}

func TestProcessPostgres(t *testing.T)     { checkProcess(t, "postgres") }
func TestProcessKafka(t *testing.T)        { checkProcess(t, "kafka") }
func TestProcessConnect(t *testing.T)      { checkProcess(t, "connect") }
func TestProcessGatewaysim(t *testing.T)   { checkProcess(t, "gatewaysim") }
func TestProcessWebhooksink(t *testing.T)  { checkProcess(t, "webhooksink") }
func TestProcessOrder(t *testing.T)        { checkProcess(t, "order") }
func TestProcessInventory(t *testing.T)    { checkProcess(t, "inventory") }
func TestProcessPayment(t *testing.T)      { checkProcess(t, "payment") }
func TestProcessShipping(t *testing.T)     { checkProcess(t, "shipping") }
func TestProcessNotification(t *testing.T) { checkProcess(t, "notification") }
func TestProcessCatalog(t *testing.T)      { checkProcess(t, "catalog") }
func TestProcessConsole(t *testing.T)      { checkProcess(t, "console") }
func TestProcessAlertmanager(t *testing.T) { checkProcess(t, "alertmanager") }
func TestProcessPrometheus(t *testing.T)   { checkProcess(t, "prometheus") }

// TestProcessesAreAllChecked: every component with a pid file in .stack/pids is one of
// components, which has its TestProcess… above (a new component needs one).
func TestProcessesAreAllChecked(t *testing.T) {
	h := theHost(t)
	pids, err := filepath.Glob(filepath.Join(h.Stack, "pids", "*.pid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range pids {
		if c := strings.TrimSuffix(filepath.Base(f), ".pid"); !slices.Contains(components, c) {
			t.Errorf("the component %s (%s) has no TestProcess… here", c, f)
		}
	}
}

// TestConnectOverridePolicyIsPrincipal: a connector may override its clients' login and nothing else.
func TestConnectOverridePolicyIsPrincipal(t *testing.T) {
	h := theHost(t)
	conf := filepath.Join(h.Stack, "connect", "connect-distributed.properties")
	if got := property(t, conf, "connector.client.config.override.policy"); got != "Principal" {
		t.Errorf("%s: connector.client.config.override.policy=%q, want Principal", conf, got)
	}
}

// TestEnvConfigProviderHasAnAllowlist: the worker's env config provider resolves only the names
// its allowlist matches (the connectors' secrets), not any variable of the worker.
func TestEnvConfigProviderHasAnAllowlist(t *testing.T) {
	h := theHost(t)
	conf := filepath.Join(h.Stack, "connect", "connect-distributed.properties")
	pattern := property(t, conf, "config.providers.env.param.allowlist.pattern")
	if pattern == "" {
		t.Fatalf("%s: the env config provider resolves any variable", conf)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatalf("allowlist %q: %v", pattern, err)
	}
	for _, v := range []string{"PG_SUPERPASS", "ORDER_OWNER_PG_PASSWORD", "CONNECT_REST_PASSWORD", "INJECTOR_KAFKA_PASSWORD", "CUSTOMER_TOKEN_PRIVATE_KEY", "ADMIN_TOKEN"} {
		if re.MatchString(v) {
			t.Errorf("the env config provider's allowlist %q resolves %s", pattern, v)
		}
	}
}

// TestConnectorOverridingAcksIsRefused: a connector that overrides its producer's acks (not a
// login setting) is refused with 400 by the override policy.
func TestConnectorOverridingAcksIsRefused(t *testing.T) {
	h := theHost(t)
	spy := `{"name":"trust-override","config":{"connector.class":"io.debezium.connector.postgresql.PostgresConnector","tasks.max":"1",
  "database.hostname":"${env:PG_HOST}","database.port":"${env:PG_PORT}","database.user":"debezium_order",
  "database.password":"${env:DEBEZIUM_ORDER_PG_PASSWORD}","database.dbname":"order_db","topic.prefix":"trustspy",
  "slot.name":"trust_spy","publication.name":"dbz_outbox","publication.autocreate.mode":"disabled","snapshot.mode":"no_data",
  "producer.override.acks":"0"}}`
	login := basicAuth(h.ConnectRESTUser, h.ConnectRESTPassword)
	code, raw := call(t, http.MethodPost, h.ConnectURL+"/connectors", spy, login, nil)
	if code != http.StatusBadRequest || !regexp.MustCompile(`(?i)override|policy`).Match(raw) {
		t.Errorf("a connector overriding producer.override.acks: %d %.300s, want 400 naming the policy", code, raw)
		call(t, http.MethodDelete, h.ConnectURL+"/connectors/trust-override", nil, login, nil)
	}
}

// TestBaseBackupShows: a base backup over a Debezium role's replication connection (pg_hba.conf
// cannot refuse it: logical replication needs that connection) shows at once on the services'
// /readyz, and the server logs the replication command (log_replication_commands).
func TestBaseBackupShows(t *testing.T) {
	h := theHost(t)
	cmd := exec.Command("psql", "-X", "-w", h.conninfo("debezium_order", "order_db", "replication=database"),
		"-c", "BASE_BACKUP (LABEL 'trust-test', MAX_RATE 32)")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+h.secretFile(t, "pg-debezium_order"), "PGCONNECT_TIMEOUT=5")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		// The server's side of it may outlive the client for a while.
		_, _ = h.psql(h.secretFile(t, "pg-superuser"), h.conninfo(env("PG_SUPERUSER", "postgres"), "postgres"),
			"-tAc", "select pg_terminate_backend(pid) from pg_stat_progress_basebackup")
		// The tests after this one want order ready again.
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			_, raw := call(t, http.MethodGet, h.OrderURL+"/readyz", nil, nil, nil)
			if !strings.Contains(string(raw), "base backup") {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("order's /readyz still shows the base backup 20 s after it was stopped: %.200s", raw)
				break
			}
		}
	})
	t.Run("on order's /readyz", func(t *testing.T) {
		var seen string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if _, raw := call(t, http.MethodGet, h.OrderURL+"/readyz", nil, nil, nil); strings.Contains(string(raw), "base backup") {
				seen = string(raw)
				break
			}
		}
		if seen == "" {
			t.Fatalf("a base backup by debezium_order did not show on order's /readyz (psql: %s)", stderr.String())
		}
		t.Logf("order's /readyz: %.200s", seen)
	})
	t.Run("in the server log", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(h.Stack, "logs", "postgres.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), "received replication command: BASE_BACKUP") {
			t.Error("the server log does not show the BASE_BACKUP")
		}
	})
}

// TestInjectorOffMayDoNothing: the test-only injector, turned off (scripts/injector.sh off), may
// log in with its static PLAIN login but write nothing; it is turned on again if it was on.
func TestInjectorOffMayDoNothing(t *testing.T) {
	h := theHost(t)
	injector := filepath.Join(h.Root, "scripts", "injector.sh")
	if _, err := os.Stat(filepath.Join(h.Stack, "injector-on")); err == nil {
		t.Cleanup(func() {
			if out, err := run(h.Root, "", nil, 60*time.Second, injector, "on"); err != nil {
				t.Errorf("scripts/injector.sh on: %v %s", err, out)
			}
		})
	}
	if out, err := run(h.Root, "", nil, 60*time.Second, injector, "off"); err != nil {
		t.Fatalf("scripts/injector.sh off: %v %s", err, out)
	}
	out, _ := run("", "poison\n", nil, 20*time.Second, "kcat", "-F", filepath.Join(h.Secrets, "kcat-injector.conf"),
		"-P", "-t", "order-events", "-k", "trust-test")
	if !strings.Contains(strings.ToLower(out), "authoriz") {
		t.Errorf("the injector, off, wrote order-events (or failed for another reason): %.300s", out)
	}
}

// TestSymlinkInClusterDirectoryLeadsNowhere: run as root, a symlink the postgres OS user plants in
// the cluster's directory leads a write of the scripts (pg_write: as that user) nowhere.
func TestSymlinkInClusterDirectoryLeadsNowhere(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("not root: the cluster's directory and the scripts belong to the same user")
	}
	h := theHost(t)
	victim, err := os.CreateTemp("", "trust-victim-") // root's, 0600, in a directory everybody may enter
	if err != nil {
		t.Fatal(err)
	}
	victim.WriteString("untouched\n")
	victim.Close()
	link := filepath.Join(h.PGDir, "trust-symlink")
	t.Cleanup(func() {
		_, _ = asPGUser("", "rm", "-f", link)
		os.Remove(victim.Name())
	})
	if out, err := asPGUser("", "ln", "-sfn", victim.Name(), link); err != nil {
		t.Fatalf("plant the symlink as %s: %v %s", pgOSUser, err, out)
	}
	_, _ = asPGUser("overwritten\n", "sh", "-c", `umask 077; cat > "$1"`, "sh", link) // scripts/lib.sh's pg_write
	if raw, _ := os.ReadFile(victim.Name()); string(raw) != "untouched\n" {
		t.Errorf("a write through a symlink in %s reached %s: %q", h.PGDir, victim.Name(), raw)
	}
}
