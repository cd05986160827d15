package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/IBM/sarama"

	"outboxsaga.dev/messaging/debezium"
)

// machineFacts lists the machine and the versions of what runs on it.
func machineFacts(ctx context.Context, admin *sql.DB, stackDir string) []string {
	var out []string
	model := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	out = append(out, fmt.Sprintf("%d CPUs (%s)", runtime.NumCPU(), model))
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		out = append(out, "memory: "+strings.Join(strings.Fields(strings.SplitN(string(raw), "\n", 2)[0])[1:], " "))
	}
	if raw, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		out = append(out, "Linux "+strings.TrimSpace(string(raw)))
	}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		out = append(out, "load average at start: "+strings.Join(strings.Fields(string(raw))[:3], " ")+
			" (the machine is shared: another stack may be under load)")
	}
	out = append(out, "Go "+runtime.Version())
	var pg string
	if err := admin.QueryRowContext(ctx, `SHOW server_version`).Scan(&pg); err == nil {
		out = append(out, "PostgreSQL "+pg)
	}
	if jars, _ := filepath.Glob(filepath.Join(stackDir, "lib", "kafka", "kafka-clients-*.jar")); len(jars) > 0 {
		out = append(out, "Kafka "+strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "kafka-clients-"), ".jar"))
	}
	if jars, _ := filepath.Glob(filepath.Join(stackDir, "lib", "plugins", "*", "debezium-api-*.jar")); len(jars) > 0 {
		out = append(out, "Debezium "+strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "debezium-api-"), ".jar"))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/IBM/sarama" {
				out = append(out, "sarama "+d.Version)
			}
		}
	}
	if v, err := exec.CommandContext(ctx, "java", "-version").CombinedOutput(); err == nil {
		out = append(out, "Java: "+strings.SplitN(string(v), "\n", 2)[0])
	}
	return out
}

// settings lists the tunables in effect and reports whether the saga topics use LogAppendTime.
func settings(ctx context.Context, admin *sql.DB, cfg config) ([]string, bool) {
	var out []string
	for _, name := range []string{"synchronous_commit", "shared_buffers", "wal_buffers", "commit_delay",
		"wal_writer_delay", "track_commit_timestamp", "max_connections"} {
		var v string
		if err := admin.QueryRowContext(ctx, `SELECT current_setting($1)`, name).Scan(&v); err == nil {
			out = append(out, fmt.Sprintf("postgres %s = %s", name, v))
		}
	}
	connect := debezium.NewClient(cfg.connectURL, cfg.env.ConnectRESTUser, cfg.env.ConnectRESTPassword)
	for _, c := range []string{"order-outbox", "inventory-outbox", "payment-outbox"} {
		conf, err := connect.Config(ctx, c)
		if err != nil {
			continue
		}
		var kv []string
		for _, k := range []string{"poll.interval.ms", "max.batch.size", "max.queue.size",
			"producer.override.linger.ms", "producer.override.batch.size"} {
			if v, ok := conf[k]; ok {
				kv = append(kv, k+"="+v)
			}
		}
		out = append(out, "connector "+c+": "+strings.Join(kv, ", "))
	}
	if raw, err := os.ReadFile(filepath.Join(cfg.stackDir, "connect", "connect-distributed.properties")); err == nil {
		var kv []string
		for _, l := range strings.Split(string(raw), "\n") {
			if strings.HasPrefix(l, "producer.") || strings.HasPrefix(l, "offset.flush") {
				kv = append(kv, redactSetting(strings.TrimSpace(l)))
			}
		}
		out = append(out, "Connect worker: "+strings.Join(kv, ", "))
	}
	logAppend := false
	if a, err := sarama.NewClusterAdmin(cfg.env.Brokers, cfg.env.SaramaConfig(sarama.NewConfig())); err == nil {
		if md, err := a.DescribeTopics([]string{"order-events", "inventory-events", "payment-events"}); err == nil {
			for _, t := range md {
				entries, _ := a.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: t.Name,
					ConfigNames: []string{"message.timestamp.type"}})
				ts := ""
				for _, e := range entries {
					ts = e.Value
				}
				logAppend = ts == "LogAppendTime"
				out = append(out, fmt.Sprintf("topic %s: %d partitions, message.timestamp.type=%s", t.Name, len(t.Partitions), ts))
			}
		}
		a.Close()
	}
	for _, k := range []string{"ORDER_DB_MAX_OPEN_CONNS", "INVENTORY_DB_MAX_OPEN_CONNS", "PAYMENT_DB_MAX_OPEN_CONNS",
		"TOPIC_PARTITIONS", "ORDER_LOG_LEVEL", "INVENTORY_LOG_LEVEL", "PAYMENT_LOG_LEVEL"} {
		if v := os.Getenv(k); v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out, logAppend
}

// redactSetting returns a key=value line of a configuration with the value of a login (a JAAS
// config, a password) replaced: a report is committed and shared, the stack's secrets are not.
func redactSetting(line string) string {
	k, _, ok := strings.Cut(line, "=")
	if ok && (strings.Contains(strings.ToLower(k), "jaas") || strings.Contains(strings.ToLower(k), "password")) {
		return k + "=[redacted]"
	}
	return line
}
