package supervisor

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secretStack is a throwaway stack whose ACL files are this repository's.
func secretStack(t *testing.T) *Stack {
	t.Helper()
	s := repoStack(t)
	s.cfg.Env["PG_PORT"] = "5432"
	return s
}

// TestEnsureSecretsMakesOnceAndKeeps: every secret is made, mode 0600, random, and never
// replaced by a second run; the credentials follow from them.
func TestEnsureSecretsMakesOnceAndKeeps(t *testing.T) {
	s := secretStack(t)
	if err := s.EnsureSecrets(); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(s.cfg.StackDir, "secrets")
	first := map[string]string{}
	for _, name := range []string{"pg-superuser", "pg-order_owner", "pg-order_svc", "pg-debezium_catalog", "pg-console", "kafka-admin", "kafka-injector",
		"kafka-connect-order", "connect-rest-operator", "gateway-merchant", "webhooksink-reader", "webhook-signing", "customer-token-key", "customer-token-pub"} {
		path := filepath.Join(secrets, name)
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("secret %s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("secret %s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		first[name] = s.secret(name)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(first["pg-superuser"]) {
		t.Errorf("pg-superuser = %q, want 32 letters and digits", first["pg-superuser"])
	}
	if first["pg-superuser"] == first["kafka-admin"] {
		t.Error("two secrets are equal")
	}
	if !strings.HasPrefix(first["webhook-signing"], "whsec_") {
		t.Errorf("webhook-signing = %q, want whsec_…", first["webhook-signing"])
	}
	// The key pair: PKCS#8 and PKIX DER of one Ed25519 pair.
	der, _ := base64.StdEncoding.DecodeString(first["customer-token-key"])
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatalf("customer-token-key: %v", err)
	}
	der, _ = base64.StdEncoding.DecodeString(first["customer-token-pub"])
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatalf("customer-token-pub: %v", err)
	}
	if !priv.(ed25519.PrivateKey).Public().(ed25519.PublicKey).Equal(pub) {
		t.Error("customer-token-pub is not the public half of customer-token-key")
	}
	kcat, _ := os.ReadFile(filepath.Join(s.cfg.StackDir, "kcat.conf"))
	if !strings.Contains(string(kcat), "sasl.username=viewer\nsasl.password="+s.secret("kafka-viewer")+"\n") {
		t.Errorf("kcat.conf does not log in as the viewer:\n%s", kcat)
	}

	if err := s.EnsureSecrets(); err != nil {
		t.Fatal(err)
	}
	for name, v := range first {
		if s.secret(name) != v {
			t.Errorf("a second run replaced secret %s", name)
		}
	}
	if got, want := s.cfg.get("ORDER_DATABASE_URL"), "postgres://order_svc:"+first["pg-order_svc"]+"@127.0.0.1:5432/order_db?sslmode=disable"; got != want {
		t.Errorf("ORDER_DATABASE_URL = %q, want %q", got, want)
	}
	kvs, err := s.Credentials() // what make test exports for the tests, after EnsureSecrets loaded them
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, kv := range kvs {
		listed[kv[0]] = kv[1]
	}
	if listed["PG_ADMIN_URL"] == "" || listed["ORDER_DATABASE_URL"] != s.cfg.get("ORDER_DATABASE_URL") || listed["ADMIN_TOKEN"] == "" {
		t.Errorf("Credentials after EnsureSecrets lacks what it loaded: PG_ADMIN_URL=%q ADMIN_TOKEN=%q", listed["PG_ADMIN_URL"], listed["ADMIN_TOKEN"])
	}
	if s.cfg.get("PAYMENT_GATEWAY_SECRET") != first["gateway-merchant"] || s.cfg.get("INJECTOR_KAFKA_PASSWORD") != first["kafka-injector"] {
		t.Error("the credentials do not follow the secrets")
	}
}

// TestEnsureSecretsRefusesAStackWithoutCredentials: Kafka data but no secrets is an earlier
// version's stack: refused, naming the way out.
func TestEnsureSecretsRefusesAStackWithoutCredentials(t *testing.T) {
	s := secretStack(t)
	if err := os.WriteFile(filepath.Join(s.cfg.StackDir, "kafka", "data", "meta.properties"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := s.EnsureSecrets()
	if err == nil || !strings.Contains(err.Error(), "make clean && make up") {
		t.Fatalf("EnsureSecrets = %v, want a refusal naming make clean && make up", err)
	}
}

// TestComposeEnvKeepsWhatIsThere: a value in .env stays, the missing ones are added, half a
// key pair is made anew as a pair; the injector, test-only, is not among them.
func TestComposeEnvKeepsWhatIsThere(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	env := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(env, []byte("PG_SUPERPASS=kept\nCUSTOMER_TOKEN_PUBLIC_KEY=half\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	added, total, err := ComposeEnv(root, env)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(env)
	text := string(raw)
	if !strings.Contains(text, "PG_SUPERPASS=kept\n") || strings.Contains(text, "=half") {
		t.Errorf(".env after ComposeEnv:\n%s", text)
	}
	if strings.Contains(text, "INJECTOR_KAFKA_PASSWORD") {
		t.Error(".env has the test-only injector's password")
	}
	if added != total-1 || strings.Count(text, "\n") != total+0 {
		t.Errorf("added %d of %d; .env has %d lines", added, total, strings.Count(text, "\n"))
	}
	if fi, _ := os.Stat(env); fi.Mode().Perm() != 0o600 {
		t.Errorf(".env has mode %v, want 0600", fi.Mode().Perm())
	}
}
