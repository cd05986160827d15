package supervisor

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"outboxsaga.dev/stack"
)

// The stack's credentials. Every password and the operator token are random, made once per stack
// by the first make up (EnsureSecrets), kept in .stack (0700) in files of mode 0600, never
// committed, and handed to each program through its environment (docs/architecture.md,
// "Credentials"):
//
//	.stack/admin-token              the operator token (ADMIN_TOKEN of the services)
//	.stack/connect-credentials      Kafka Connect's REST API as its one user, operator:<password>
//	.stack/kcat.conf                kcat -F .stack/kcat.conf: the broker, as the read-only viewer
//	.stack/secrets/pg-<role>        PostgreSQL: the superuser (pg-superuser) and, per service
//	                                database, <svc>_owner, <svc>_svc and debezium_<svc>; console
//	.stack/secrets/kafka-<name>     Kafka: admin (the broker's super user) and every principal of
//	                                infra/kafka/acls.conf and acls-test.conf
//	.stack/secrets/*.properties     the Kafka command-line tools' logins (admin, viewer)
//	.stack/secrets/connect-rest-<user>  the REST API's password

// PGRoles lists every login role of the cluster but the superuser: per saga service
// <svc>_owner (the schema), <svc>_svc (the rows), debezium_<svc> (the outbox's stream); console.
func PGRoles() []string {
	var out []string
	for _, p := range stack.SagaServices() {
		out = append(out, p.Name+"_owner", p.Name+"_svc", "debezium_"+p.Name)
	}
	return append(out, "console")
}

// KafkaPrincipals lists the broker's logins: admin and every principal of the ACL files given
// (relative to root), sorted.
func KafkaPrincipals(root string, aclFiles ...string) ([]string, error) {
	set := map[string]bool{"admin": true}
	for _, f := range aclFiles {
		raw, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, fmt.Errorf("principals: %w", err)
		}
		for _, l := range strings.Split(string(raw), "\n") {
			fields := strings.Fields(l)
			if len(fields) > 0 && !strings.HasPrefix(fields[0], "#") {
				set[fields[0]] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// aclConf and aclTestConf: the broker's ACLs, and the test-only injector's.
const (
	aclConf     = "infra/kafka/acls.conf"
	aclTestConf = "infra/kafka/acls-test.conf"
)

// RandomSecret returns 32 random letters and digits (~190 bits; safe in URLs, JAAS and
// properties files).
func RandomSecret() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	for i := range b {
		var r [1]byte
		for {
			_, _ = rand.Read(r[:])
			if int(r[0]) < 256/len(alphabet)*len(alphabet) {
				break
			}
		}
		b[i] = alphabet[int(r[0])%len(alphabet)]
	}
	return string(b)
}

// WebhookSecret returns a Standard Webhooks signing secret: whsec_<base64 of 32 random bytes>.
func WebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// CustomerKeyPair returns a fresh Ed25519 pair for the customer tokens: base64 of the PKCS#8
// DER private key and of the PKIX DER public key (what openssl pkey -outform DER writes).
func CustomerKeyPair() (priv, pub string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("customer token key: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		return "", "", fmt.Errorf("customer token key: %w", err)
	}
	pkix, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		return "", "", fmt.Errorf("customer token key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(p8), base64.StdEncoding.EncodeToString(pkix), nil
}

func nonEmpty(path string) bool { fi, err := os.Stat(path); return err == nil && fi.Size() > 0 }

// EnsureSecrets makes what is missing of the stack's secrets (never replaces one) and the client
// configurations that carry them, then puts the credentials into the configuration (Credentials).
// A stack whose data was made before it had credentials cannot be converted (its Kafka storage
// has no logins): it is refused with the way out.
func (s *Stack) EnsureSecrets() error {
	st, secrets := s.cfg.StackDir, filepath.Join(s.cfg.StackDir, "secrets")
	pgData, pgDir := s.cfg.get("PG_DATA"), s.cfg.get("PG_DIR")
	_, errSecrets := os.Stat(secrets)
	noSecrets := errors.Is(errSecrets, os.ErrNotExist)
	kafkaMade := exists(filepath.Join(st, "kafka", "data", "meta.properties"))
	if noSecrets && !kafkaMade && exists(filepath.Join(pgData, "PG_VERSION")) && !strings.HasPrefix(pgData, st+"/") {
		// The cluster outlives the checkout (it lives outside it as root): a checkout deleted
		// without make clean leaves it behind, and a new checkout at the same path finds it
		// without its passwords. Nothing of this stack can log in to it, and its Kafka (offsets,
		// topics) is gone with the old .stack: it is deleted, as make clean would have, unless
		// its server still runs.
		raw, _ := os.ReadFile(filepath.Join(pgData, "postmaster.pid"))
		line, _, _ := strings.Cut(string(raw), "\n")
		if pid, _ := strconv.Atoi(strings.TrimSpace(line)); pid > 0 && Exists(pid) {
			return fmt.Errorf("a PostgreSQL cluster of an earlier checkout at this path is in %s, without the passwords that went with that checkout's .stack, and its server still runs (pid %d). Stop it (kill %d), then: make clean && make up", pgData, pid, pid)
		}
		fmt.Fprintf(s.cfg.Err, "\033[33mwarning:\033[0m deleting the PostgreSQL cluster an earlier checkout at this path left in %s: its passwords went with that checkout's .stack\n", pgDir)
		if err := os.RemoveAll(pgDir); err != nil {
			return fmt.Errorf("delete the orphan cluster: %w", err)
		}
	}
	if noSecrets && (kafkaMade || exists(filepath.Join(pgData, "PG_VERSION"))) {
		return fmt.Errorf("the stack in %s was made before this version, which gives every program its own credentials: its Kafka has no logins and its databases have the old well-known passwords. Start it over (this deletes its data): make clean && make up", st)
	}
	if err := os.MkdirAll(st, 0o700); err != nil {
		return err
	}
	// 0700, or 0710 for the stack's OS user's group (runUserReady): entering, never listing.
	if !s.openToRunGroup(st) {
		if err := os.Chmod(st, 0o700); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(secrets, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(secrets, 0o700); err != nil {
		return err
	}
	principals, err := KafkaPrincipals(s.cfg.Root, aclConf, aclTestConf)
	if err != nil {
		return err
	}
	news := map[string]string{filepath.Join(st, "admin-token"): RandomSecret()}
	add := func(name, v string) { news[filepath.Join(secrets, name)] = v }
	add("pg-superuser", RandomSecret())
	for _, r := range PGRoles() {
		add("pg-"+r, RandomSecret())
	}
	for _, p := range principals {
		add("kafka-"+p, RandomSecret())
	}
	add("connect-rest-"+s.cfg.get("CONNECT_REST_USER"), RandomSecret())
	add("gateway-merchant", RandomSecret())
	add("webhooksink-reader", RandomSecret())
	add("webhook-signing", WebhookSecret())
	for path, v := range news {
		if !nonEmpty(path) {
			if err := writeSecret(path, v+"\n"); err != nil {
				return fmt.Errorf("secret %s: %w", path, err)
			}
		}
	}
	if !nonEmpty(filepath.Join(secrets, "customer-token-key")) || !nonEmpty(filepath.Join(secrets, "customer-token-pub")) {
		priv, pub, err := CustomerKeyPair()
		if err != nil {
			return err
		}
		if err := writeSecret(filepath.Join(secrets, "customer-token-key"), priv); err != nil {
			return err
		}
		if err := writeSecret(filepath.Join(secrets, "customer-token-pub"), pub); err != nil {
			return err
		}
	}
	if err := s.clientConfigs(); err != nil {
		return err
	}
	if err := s.loadCredentials(); err != nil {
		return err
	}
	s.comps = s.newComps() // they read the credentials
	return nil
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// openToRunGroup reports whether dir is 0710 and of the stack's OS user's group already.
func (s *Stack) openToRunGroup(dir string) bool {
	u, err := user.Lookup(s.stackUser())
	if err != nil {
		return false
	}
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return false
	}
	return st.Mode&0o777 == 0o710 && strconv.Itoa(int(st.Gid)) == u.Gid
}

// stackUser is the OS user the stack runs as when root (STACK_USER, default outbox-saga).
func (s *Stack) stackUser() string {
	if u := s.cfg.get("STACK_USER"); u != "" {
		return u
	}
	return "outbox-saga"
}

// clientConfigs writes the logins of the command-line clients: .stack/connect-credentials and
// connect.curlrc (Kafka Connect's REST API), .stack/kcat.conf (the viewer, for kcat -F and make
// tail), secrets/kcat-injector.conf (the test-only injector), the Kafka tools' logins as the
// admin and the viewer, and the header files for curl -H @file. The passwords go into files of
// mode 0600, on no command line.
func (s *Stack) clientConfigs() error {
	st, secrets := s.cfg.StackDir, filepath.Join(s.cfg.StackDir, "secrets")
	restUser := s.cfg.get("CONNECT_REST_USER")
	restPW := s.secret("connect-rest-" + restUser)
	bootstrap := fmt.Sprintf("%s:%d", s.cfg.get("KAFKA_HOST"), s.cfg.port("KAFKA_PORT"))
	kcat := func(principal, usage, who string) string {
		return fmt.Sprintf(`# %s
# The broker of this stack, as %s (infra/kafka/acls.conf). PLAIN,
# not SCRAM: Debian's kcat cannot log in to Kafka 4 with SCRAM (infra/kafka/server.properties).
bootstrap.servers=%s
security.protocol=SASL_PLAINTEXT
sasl.mechanisms=PLAIN
sasl.username=%s
sasl.password=%s
`, usage, who, bootstrap, principal, s.secret("kafka-"+principal))
	}
	files := map[string]string{
		filepath.Join(st, "connect-credentials"): restUser + ":" + restPW + "\n",
		filepath.Join(st, "kcat.conf"): kcat("viewer", `kcat -F .stack/kcat.conf -C -t order-events -f '%k %h %s\n'   (make up writes this file)`,
			"the read-only principal viewer"),
		filepath.Join(secrets, "kcat-injector.conf"): kcat("injector", "kcat -F .stack/secrets/kcat-injector.conf -P -t order-events   (tests and demos only)",
			"the TEST-ONLY principal injector, which may write the event topics"),
		filepath.Join(st, "admin.header"):       "Authorization: Bearer " + s.firstLine(filepath.Join(st, "admin-token")) + "\n",
		filepath.Join(st, "webhooksink.header"): "Authorization: Bearer " + s.secret("webhooksink-reader") + "\n",
		filepath.Join(st, "gateway.header"):     "Authorization: Bearer " + s.secret("gateway-merchant") + "\n",
		filepath.Join(st, "connect.curlrc"):     fmt.Sprintf("user = \"%s:%s\"\n", restUser, restPW),
	}
	for _, who := range []string{"admin", "viewer"} {
		files[filepath.Join(secrets, "kafka-"+who+".properties")] = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n" +
			fmt.Sprintf("sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"%s\" password=\"%s\";\n", who, s.secret("kafka-"+who))
	}
	for path, content := range files {
		if err := writeSecret(path, content); err != nil {
			return fmt.Errorf("client configuration %s: %w", path, err)
		}
	}
	_ = os.Remove(filepath.Join(secrets, "kcat-admin.conf")) // made by an earlier version
	return nil
}

func (s *Stack) firstLine(path string) string {
	raw, _ := os.ReadFile(path)
	line, _, _ := strings.Cut(string(raw), "\n")
	return line
}

// Credentials returns what the programs and the tests read, from the secrets that exist (none
// when there are none yet): PG_SUPERPASS and PG_ADMIN_URL; <ROLE>_PG_PASSWORD of every role;
// per saga service <SVC>_DATABASE_URL (the runtime role), <SVC>_MIGRATIONS_DATABASE_URL (the
// owner), <SVC>_KAFKA_USERNAME; <PRINCIPAL>_KAFKA_PASSWORD of every Kafka principal;
// ADMIN_TOKEN; CONNECT_REST_PASSWORD; the console's, the gateway's, the webhook's and the
// customer tokens' secrets. A variable set in the configuration's environment wins (and is
// listed with its value).
func (s *Stack) Credentials() ([][2]string, error) {
	if !exists(filepath.Join(s.cfg.StackDir, "secrets")) {
		return nil, nil
	}
	var out [][2]string
	set := func(k, v string) string {
		if cur := s.cfg.get(k); cur != "" {
			v = cur // the caller's (or one loaded before: the same)
		}
		for _, kv := range out {
			if kv[0] == k {
				return kv[1]
			}
		}
		out = append(out, [2]string{k, v})
		return v
	}
	host, port, super := s.cfg.get("PG_HOST"), s.cfg.get("PG_PORT"), s.cfg.get("PG_SUPERUSER")
	if super == "" {
		super = "postgres"
	}
	superpass := set("PG_SUPERPASS", s.secret("pg-superuser"))
	set("PG_ADMIN_URL", fmt.Sprintf("postgres://%s:%s@%s:%s/postgres?sslmode=disable", super, superpass, host, port))
	pw := map[string]string{}
	for _, r := range PGRoles() {
		pw[r] = set(upper(r)+"_PG_PASSWORD", s.secret("pg-"+r))
	}
	for _, p := range stack.SagaServices() {
		set(p.Env()+"_DATABASE_URL", fmt.Sprintf("postgres://%s_svc:%s@%s:%s/%s?sslmode=disable", p.Name, pw[p.Name+"_svc"], host, port, p.Database()))
		set(p.Env()+"_MIGRATIONS_DATABASE_URL", fmt.Sprintf("postgres://%s_owner:%s@%s:%s/%s?sslmode=disable", p.Name, pw[p.Name+"_owner"], host, port, p.Database()))
		set(p.Env()+"_KAFKA_USERNAME", p.Name)
	}
	principals, err := KafkaPrincipals(s.cfg.Root, aclConf, aclTestConf)
	if err != nil {
		return nil, err
	}
	kpw := map[string]string{}
	for _, p := range principals {
		kpw[p] = set(upper(p)+"_KAFKA_PASSWORD", s.secret("kafka-"+p))
	}
	token := set("ADMIN_TOKEN", s.firstLine(filepath.Join(s.cfg.StackDir, "admin-token")))
	set("CONNECT_REST_PASSWORD", s.secret("connect-rest-"+s.cfg.get("CONNECT_REST_USER")))
	// The console: the operator token, the viewer's Kafka login, its read-only PostgreSQL login.
	set("CONSOLE_ADMIN_TOKEN", token)
	set("CONSOLE_KAFKA_PASSWORD", kpw["viewer"])
	set("CONSOLE_DATABASE_URL", fmt.Sprintf("postgres://console:%s@%s:%s/postgres?sslmode=disable", pw["console"], host, port))
	// The payment gateway's merchant secret: the simulator's, the payment service's, and the
	// tools' and tests' that read its ledger.
	merchant := set("GATEWAY_MERCHANT_SECRET", s.secret("gateway-merchant"))
	set("GATEWAYSIM_MERCHANT_SECRET", merchant)
	set("PAYMENT_GATEWAY_SECRET", merchant)
	// The webhook's signing secret: the notification service signs, the sink verifies; the
	// sink's listing wants its read token.
	signing := set("NOTIFICATION_WEBHOOK_SECRET", s.secret("webhook-signing"))
	set("WEBHOOKSINK_SECRET", signing)
	set("WEBHOOKSINK_READ_TOKEN", s.secret("webhooksink-reader"))
	// Customer tokens (EdDSA JWTs): the services verify with the public key; only the issuer
	// (make token, the tests and tools) holds the private one.
	set("CUSTOMER_TOKEN_PRIVATE_KEY", s.secret("customer-token-key"))
	set("CUSTOMER_TOKEN_PUBLIC_KEY", s.secret("customer-token-pub"))
	return out, nil
}

// loadCredentials puts Credentials into the configuration's environment.
func (s *Stack) loadCredentials() error {
	kvs, err := s.Credentials()
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		s.cfg.Env[kv[0]] = kv[1]
	}
	return nil
}

// ShellExports writes kvs as bash export statements (values single-quoted), for lib.sh's eval.
func ShellExports(kvs [][2]string) string {
	var b strings.Builder
	for _, kv := range kvs {
		fmt.Fprintf(&b, "export %s='%s'\n", kv[0], strings.ReplaceAll(kv[1], "'", `'\''`))
	}
	return b.String()
}

// ComposeEnv writes or completes the .env of the docker compose stack (mode 0600) at path: a
// random secret per variable docker-compose.yml needs (the principals of acls.conf only, not
// the test-only injector), kept when .env has it already (the database volume was made with
// it). The customer tokens' key pair is made as a pair. It returns how many it added and how
// many there are.
func ComposeEnv(root, path string) (added, total int, err error) {
	names, err := composeNames(root)
	if err != nil {
		return 0, 0, err
	}
	var lines []string
	if raw, err := os.ReadFile(path); err == nil {
		lines = strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	} else if !os.IsNotExist(err) {
		return 0, 0, err
	} else {
		lines = []string{"# docker compose's secrets (make compose-env; never commit this file)"}
	}
	has := func(n string) bool {
		return slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, n+"=") })
	}
	for _, n := range names {
		if !has(n) {
			lines = append(lines, n+"="+composeValue(n))
			added++
		}
	}
	if !has("CUSTOMER_TOKEN_PRIVATE_KEY") || !has("CUSTOMER_TOKEN_PUBLIC_KEY") {
		// Half a pair is no pair: both anew (the public key is in no database).
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "CUSTOMER_TOKEN_") })
		priv, pub, err := CustomerKeyPair()
		if err != nil {
			return 0, 0, err
		}
		lines = append(lines, "CUSTOMER_TOKEN_PRIVATE_KEY="+priv, "CUSTOMER_TOKEN_PUBLIC_KEY="+pub)
		added += 2
	}
	if err := writeSecret(path+".new", strings.Join(lines, "\n")+"\n"); err != nil {
		return 0, 0, err
	}
	return added, len(names) + 2, os.Rename(path+".new", path)
}

// ComposeEnvFresh returns a fresh set of the compose stack's variables (NAME=VALUE lines).
func ComposeEnvFresh(root string) (string, error) {
	names, err := composeNames(root)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s\n", n, composeValue(n))
	}
	priv, pub, err := CustomerKeyPair()
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "CUSTOMER_TOKEN_PRIVATE_KEY=%s\nCUSTOMER_TOKEN_PUBLIC_KEY=%s\n", priv, pub)
	return b.String(), nil
}

// composeNames: every variable docker-compose.yml needs but the customer tokens' key pair.
func composeNames(root string) ([]string, error) {
	names := []string{"PG_SUPERPASS"}
	for _, r := range PGRoles() {
		names = append(names, upper(r)+"_PG_PASSWORD")
	}
	principals, err := KafkaPrincipals(root, aclConf)
	if err != nil {
		return nil, err
	}
	for _, p := range principals {
		names = append(names, upper(p)+"_KAFKA_PASSWORD")
	}
	return append(names, "ADMIN_TOKEN", "CONNECT_REST_PASSWORD", "GATEWAY_MERCHANT_SECRET", "WEBHOOK_SIGNING_SECRET", "WEBHOOKSINK_READ_TOKEN"), nil
}

func composeValue(name string) string {
	if name == "WEBHOOK_SIGNING_SECRET" {
		return WebhookSecret()
	}
	return RandomSecret()
}
