package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"outboxsaga.dev/stack"
)

// The broker's logins (a SCRAM login per principal of the ACL files), its ACLs (exactly the
// files') and the saga topics (LogAppendTime, so that make bench can measure the outbox commit →
// Kafka hop; the missing ones only), applied by tools/cmd/kafkasetup as the admin. It runs at
// every start of the broker, also after a crash; on a broker that was running already only when
// something it applies changed since (the stamp .stack/kafka/setup.sha256).
//
// The test-only principal injector (infra/kafka/acls-test.conf) has a login and ACLs only while
// make test or make chaos runs (Injector; the marker file .stack/injector-on says so, so that a
// broker restarted during a test run gets them back).

func (s *Stack) injectorMark() string { return filepath.Join(s.cfg.StackDir, "injector-on") }

// aclFiles: the ACL files the broker has now.
func (s *Stack) aclFiles() []string {
	files := []string{filepath.Join(s.cfg.Root, aclConf)}
	if exists(s.injectorMark()) {
		files = append(files, filepath.Join(s.cfg.Root, aclTestConf))
	}
	return files
}

// kafkaSetup runs tools/cmd/kafkasetup (built into bin/ when missing, or always when build) with
// the broker's address, the ACL files and args, as the admin; its output goes to out.
func (s *Stack) kafkaSetup(ctx context.Context, build bool, out io.Writer, args ...string) error {
	bin := filepath.Join(s.cfg.Root, "bin", "kafkasetup")
	if build || !exists(bin) {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kafkasetup")
		cmd.Dir, cmd.Stdout, cmd.Stderr = filepath.Join(s.cfg.Root, "tools"), s.cfg.Err, s.cfg.Err
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build of tools/cmd/kafkasetup failed: %w", err)
		}
	}
	bootstrap := fmt.Sprintf("%s:%d", s.cfg.get("KAFKA_HOST"), s.cfg.port("KAFKA_PORT"))
	cmd := exec.CommandContext(ctx, bin, append([]string{"-brokers", bootstrap, "-acls", strings.Join(s.aclFiles(), ",")}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_USERNAME=admin", "KAFKA_PASSWORD=" + s.secret("kafka-admin")}
	principals, err := KafkaPrincipals(s.cfg.Root, aclConf, aclTestConf)
	if err != nil {
		return err
	}
	for _, p := range principals {
		cmd.Env = append(cmd.Env, upper(p)+"_KAFKA_PASSWORD="+s.secret("kafka-"+p))
	}
	cmd.Stdout, cmd.Stderr = out, s.cfg.Err
	return cmd.Run()
}

// kafkaStamp sums everything the setup applies.
func (s *Stack) kafkaStamp() (string, error) {
	h := sha256.New()
	files := []string{filepath.Join(s.cfg.Root, aclConf), filepath.Join(s.cfg.Root, aclTestConf)}
	src, _ := filepath.Glob(filepath.Join(s.cfg.Root, "tools/cmd/kafkasetup/*.go"))
	files = append(files, src...)
	if exists(s.injectorMark()) {
		fmt.Fprintln(h, "injector on")
		acl, _ := filepath.Glob(filepath.Join(s.cfg.Root, "tools/kafkaacl/*.go"))
		files = append(files, acl...)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(raw)
	}
	fmt.Fprintln(h, strings.Join(stack.SagaTopics(), " "), strings.Join(stack.HeartbeatTopics(), " "), strings.Join(stack.OffsetsTopics(), " "), s.partitions())
	principals, err := KafkaPrincipals(s.cfg.Root, aclConf, aclTestConf)
	if err != nil {
		return "", err
	}
	for _, p := range principals {
		fmt.Fprintln(h, p, s.secret("kafka-"+p))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (s *Stack) partitions() int {
	if n, err := strconv.Atoi(s.cfg.get("TOPIC_PARTITIONS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// SetupKafka applies the broker's logins, ACLs and topics; onlyIfChanged skips it when the
// stamp says nothing changed since it last ran.
func (s *Stack) SetupKafka(ctx context.Context, onlyIfChanged bool) error {
	if err := s.EnsureSecrets(); err != nil {
		return err
	}
	return s.setupKafka(ctx, onlyIfChanged)
}

func (s *Stack) setupKafka(ctx context.Context, onlyIfChanged bool) error {
	stampFile := filepath.Join(s.cfg.StackDir, "kafka", "setup.sha256")
	want, err := s.kafkaStamp()
	if err != nil {
		return err
	}
	if onlyIfChanged && strings.TrimSpace(s.firstLine(stampFile)) == want {
		return nil
	}
	args := []string{"-topics", strings.Join(stack.SagaTopics(), ","), "-transient-topics", strings.Join(stack.HeartbeatTopics(), ","),
		"-compacted-topics", strings.Join(stack.OffsetsTopics(), ","),
		"-partitions", strconv.Itoa(s.partitions())}
	if !exists(s.injectorMark()) {
		args = append(args, "-drop-logins", "injector")
	}
	if err := s.kafkaSetup(ctx, true, s.cfg.Out, args...); err != nil {
		return fmt.Errorf("setting up the broker's logins, ACLs and topics failed (if this stack's Kafka storage was made by an earlier version, start over: make clean && make up): %w", err)
	}
	return os.WriteFile(stampFile, []byte(want+"\n"), 0o600)
}

// Injector gives the test-only principal injector its SCRAM login and its ACLs (on), or takes
// both away again (off). Its PLAIN login for kcat is static in the broker's configuration: while
// it is off that login authenticates and may do nothing (no ACL names it).
func (s *Stack) Injector(ctx context.Context, on bool) error {
	wait := []string{"-wait", (30 * time.Second).String()}
	if !on {
		_ = os.Remove(s.injectorMark())
		if err := s.kafkaSetup(ctx, false, io.Discard, append(wait, "-drop-logins", "injector")...); err != nil {
			return fmt.Errorf("could not take the injector's login and ACLs away (run scripts/injector.sh off again): %w", err)
		}
		return nil
	}
	if err := s.EnsureSecrets(); err != nil {
		return err
	}
	if err := os.WriteFile(s.injectorMark(), nil, 0o600); err != nil {
		return err
	}
	if err := s.kafkaSetup(ctx, false, io.Discard, wait...); err != nil {
		return fmt.Errorf("could not give the injector its login and ACLs: %w", err)
	}
	return nil
}
