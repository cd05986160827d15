// Command kafkasetup makes the broker's logins, permissions and topics what the repository says:
//
//   - a SCRAM-SHA-512 login for every principal of the ACL files (infra/kafka/acls.conf, and
//     acls-test.conf while a test runs), with the password in <PRINCIPAL>_KAFKA_PASSWORD (a login
//     whose password does not work is reset); the logins of -drop-logins are deleted;
//   - exactly the ACLs of those files: missing ones are created, any other is removed;
//   - the topics of -topics (LogAppendTime, max.message.bytes 1 MiB, retention.ms -1: they keep
//     every record for ever, the pipeline's history) and of -transient-topics (the same, with the
//     broker's retention: Debezium's heartbeats), unless they exist; an existing topic of -topics
//     that does not keep its records for ever is set to.
//
// It logs in as the broker's super user (KAFKA_USERNAME, KAFKA_PASSWORD: the admin, whose login
// the broker's storage was formatted with). It is idempotent: scripts/kafka.sh runs it at every
// start of the broker, docker-compose.yml once (the kafka-setup container).
//
//	go run ./cmd/kafkasetup -acls ../infra/kafka/acls.conf -topics order-events,inventory-events -partitions 3
package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/kafka"
	"outboxsaga.dev/stack"
	"outboxsaga.dev/tools/kafkaacl"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkasetup:", err)
		os.Exit(1)
	}
}

func run() error {
	aclPaths := flag.String("acls", "infra/kafka/acls.conf", "the ACL files, comma-separated")
	drop := flag.String("drop-logins", "", "principals whose SCRAM logins are deleted, comma-separated (the test-only injector after a test run)")
	brokers := flag.String("brokers", envOr("KAFKA_BROKERS", fmt.Sprintf("127.0.0.1:%d", stack.KafkaPort)), "bootstrap brokers, comma-separated")
	topics := flag.String("topics", "", "topics to create when missing (kept for ever), comma-separated")
	transient := flag.String("transient-topics", "", "topics to create when missing, with the broker's retention, comma-separated")
	compacted := flag.String("compacted-topics", "", "topics to create when missing, compacted with one partition (the connectors' offsets topics), comma-separated")
	partitions := flag.Int("partitions", 3, "partitions of a created topic")
	wait := flag.Duration("wait", time.Minute, "how long to wait for the broker to accept the admin's login")
	flag.Parse()

	var spec kafkaacl.Spec
	for _, path := range strings.Split(*aclPaths, ",") {
		s, err := kafkaacl.ReadFile(path)
		if err != nil {
			return err
		}
		spec.ACLs = append(spec.ACLs, s.ACLs...)
	}
	var dropped []string
	if *drop != "" {
		dropped = strings.Split(*drop, ",")
	}
	passwords := map[string]string{}
	for _, p := range spec.Principals() {
		v := kafkaacl.PasswordVar(p)
		if passwords[p] = os.Getenv(v); passwords[p] == "" {
			return fmt.Errorf("no password for principal %s: %s is not set", p, v)
		}
	}
	user := os.Getenv("KAFKA_USERNAME")
	if user == "" {
		return errors.New("KAFKA_USERNAME and KAFKA_PASSWORD must name the broker's super user")
	}
	list := strings.Split(*brokers, ",")
	admin, err := connect(list, user, os.Getenv("KAFKA_PASSWORD"), *wait)
	if err != nil {
		return err
	}
	defer admin.Close()

	created, err := logins(admin, list, passwords)
	if err != nil {
		return err
	}
	if err := dropLogins(admin, dropped); err != nil {
		return err
	}
	added, removed, err := kafkaacl.Apply(admin, spec)
	if err != nil {
		return err
	}
	var names, short []string
	if *topics != "" {
		names = strings.Split(*topics, ",")
	}
	if *transient != "" {
		short = strings.Split(*transient, ",")
	}
	existing, err := admin.ListTopics()
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	made, err := createTopics(admin, names, int32(*partitions), true)
	if err != nil {
		return err
	}
	madeShort, err := createTopics(admin, short, int32(*partitions), false)
	if err != nil {
		return err
	}
	var offsets []string
	if *compacted != "" {
		offsets = strings.Split(*compacted, ",")
	}
	madeOffsets, err := createCompacted(admin, offsets)
	if err != nil {
		return err
	}
	var older []string // made before: a topic made now keeps its records for ever already
	for _, t := range names {
		if _, ok := existing[t]; ok {
			older = append(older, t)
		}
	}
	if err := keepForever(admin, older); err != nil {
		return err
	}
	names, made = append(append(names, short...), offsets...), made+madeShort+madeOffsets
	fmt.Printf("    kafka: %d logins (%d set now, %d dropped), %d ACLs (%d added, %d removed), %d topics (%d created)\n",
		len(passwords), created, len(dropped), len(spec.ACLs), added, removed, len(names), made)
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// connect logs in as the super user, retrying while the broker starts.
func connect(brokers []string, user, password string, wait time.Duration) (sarama.ClusterAdmin, error) {
	deadline := time.Now().Add(wait)
	for {
		admin, err := sarama.NewClusterAdmin(brokers, config(user, password))
		if err == nil {
			return admin, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("log in to %v as %s: %w", brokers, user, err)
		}
		time.Sleep(time.Second)
	}
}

// config is a client configuration logged in as user.
func config(user, password string) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "kafkasetup"
	cfg.Version = sarama.V3_6_0_0 // user SCRAM credentials need 2.7, KRaft's ACL forwarding 3.x
	cfg.Admin.Timeout = 30 * time.Second
	return kafka.Authenticate(cfg, user, password)
}

// logins gives every principal its SCRAM-SHA-512 login: one that is missing, or whose password
// does not log in any more (its secret was regenerated), is set. It returns how many it set.
func logins(admin sarama.ClusterAdmin, brokers []string, passwords map[string]string) (int, error) {
	users := make([]string, 0, len(passwords))
	for p := range passwords {
		users = append(users, p)
	}
	slices.Sort(users)
	described, err := admin.DescribeUserScramCredentials(users)
	if err != nil {
		return 0, fmt.Errorf("describe SCRAM logins: %w", err)
	}
	has := map[string]bool{}
	for _, r := range described {
		for _, c := range r.CredentialInfos {
			has[r.User] = has[r.User] || c.Mechanism == sarama.SCRAM_MECHANISM_SHA_512
		}
	}
	var upserts []sarama.AlterUserScramCredentialsUpsert
	for _, u := range users {
		if has[u] && logsIn(brokers, u, passwords[u]) {
			continue
		}
		salt := make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return 0, fmt.Errorf("salt: %w", err)
		}
		upserts = append(upserts, sarama.AlterUserScramCredentialsUpsert{
			Name: u, Mechanism: sarama.SCRAM_MECHANISM_SHA_512, Iterations: 8192, Salt: salt, Password: []byte(passwords[u]),
		})
	}
	if len(upserts) == 0 {
		return 0, nil
	}
	results, err := admin.UpsertUserScramCredentials(upserts)
	if err != nil {
		return 0, fmt.Errorf("set SCRAM logins: %w", err)
	}
	for _, r := range results {
		if r.ErrorCode != sarama.ErrNoError {
			msg := ""
			if r.ErrorMessage != nil {
				msg = *r.ErrorMessage
			}
			return 0, fmt.Errorf("set the SCRAM login of %s: %w %s", r.User, r.ErrorCode, msg)
		}
	}
	return len(upserts), nil
}

// dropLogins deletes the SCRAM-SHA-512 logins of users that have one (a user without one is
// already gone).
func dropLogins(admin sarama.ClusterAdmin, users []string) error {
	if len(users) == 0 {
		return nil
	}
	described, err := admin.DescribeUserScramCredentials(users)
	if err != nil {
		return fmt.Errorf("describe SCRAM logins: %w", err)
	}
	var deletes []sarama.AlterUserScramCredentialsDelete
	for _, r := range described {
		for _, c := range r.CredentialInfos {
			if c.Mechanism == sarama.SCRAM_MECHANISM_SHA_512 {
				deletes = append(deletes, sarama.AlterUserScramCredentialsDelete{Name: r.User, Mechanism: c.Mechanism})
			}
		}
	}
	if len(deletes) == 0 {
		return nil
	}
	results, err := admin.DeleteUserScramCredentials(deletes)
	if err != nil {
		return fmt.Errorf("delete SCRAM logins %v: %w", users, err)
	}
	for _, r := range results {
		if r.ErrorCode != sarama.ErrNoError && r.ErrorCode != 91 { // 91: RESOURCE_NOT_FOUND, already gone
			return fmt.Errorf("delete the SCRAM login of %s: %w", r.User, r.ErrorCode)
		}
	}
	return nil
}

// logsIn reports whether user can log in with password (a connection to one broker, opened and
// closed).
func logsIn(brokers []string, user, password string) bool {
	b := sarama.NewBroker(brokers[0])
	if err := b.Open(config(user, password)); err != nil {
		return false
	}
	defer b.Close()
	ok, err := b.Connected()
	if err != nil || !ok {
		return false
	}
	// The login happens on the first request; ApiVersions needs no permission.
	_, err = b.ApiVersions(&sarama.ApiVersionsRequest{})
	return err == nil
}

// createTopics creates the topics that do not exist yet and returns how many it created; forever:
// they keep every record (retention.ms -1), else the broker's retention applies.
func createTopics(admin sarama.ClusterAdmin, names []string, partitions int32, forever bool) (int, error) {
	if len(names) == 0 {
		return 0, nil
	}
	existing, err := admin.ListTopics()
	if err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	// LogAppendTime: a record's timestamp is the broker's append time, so the outbox commit →
	// Kafka hop can be measured (make bench). 1 MiB: the size limits agree end to end.
	appendTime, maxBytes, never := "LogAppendTime", "1048576", "-1"
	made := 0
	for _, t := range names {
		if _, ok := existing[t]; ok {
			continue
		}
		entries := map[string]*string{"message.timestamp.type": &appendTime, "max.message.bytes": &maxBytes}
		if forever {
			entries["retention.ms"] = &never
		}
		// ReplicationFactor -1: the broker's default.replication.factor (1 on the single node, 3 on
		// the cluster; its min.insync.replicas likewise).
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: -1,
			ConfigEntries: entries}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return made, fmt.Errorf("create topic %s: %w", t, err)
		}
		made++
	}
	return made, nil
}

// createCompacted creates the topics of names that do not exist yet, compacted with one partition,
// as Kafka Connect makes its offsets topics (a connector's offsets are one small key each: the
// latest wins), and returns how many it created.
func createCompacted(admin sarama.ClusterAdmin, names []string) (int, error) {
	existing, err := admin.ListTopics()
	if err != nil {
		return 0, fmt.Errorf("list topics: %w", err)
	}
	compact := "compact"
	made := 0
	for _, t := range names {
		if _, ok := existing[t]; ok {
			continue
		}
		err := admin.CreateTopic(t, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: -1,
			ConfigEntries: map[string]*string{"cleanup.policy": &compact}}, false)
		if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
			return made, fmt.Errorf("create topic %s: %w", t, err)
		}
		made++
	}
	return made, nil
}

// keepForever sets retention.ms -1 on each topic of names that has another retention (a topic
// made by an earlier version): the event topics are the pipeline's history (docs/architecture.md,
// "History of every service").
func keepForever(admin sarama.ClusterAdmin, names []string) error {
	never := "-1"
	for _, t := range names {
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t, ConfigNames: []string{"retention.ms"}})
		if err != nil {
			return fmt.Errorf("describe topic %s: %w", t, err)
		}
		if len(entries) == 1 && entries[0].Value == never {
			continue
		}
		err = admin.IncrementalAlterConfig(sarama.TopicResource, t, map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: &never}}, false)
		if err != nil {
			return fmt.Errorf("keep the records of %s for ever: %w", t, err)
		}
	}
	return nil
}
