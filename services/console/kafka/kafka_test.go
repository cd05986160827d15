package kafka_test

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"outboxsaga.dev/console/consoletest"
	"outboxsaga.dev/console/kafka"
)

// TestLagOfAGroup gives a test group a known lag on a test topic of the running stack (as the
// test-only injector) and reads it back as the viewer: records behind, seconds behind, trend.
func TestLagOfAGroup(t *testing.T) {
	if testing.Short() || os.Getenv("SKIP_INTEGRATION") == "1" {
		t.Skip("integration test: needs the running stack")
	}
	env := consoletest.Load()
	if c, err := net.DialTimeout("tcp", env.Brokers[0], time.Second); err != nil {
		t.Skipf("no stack: no broker at %s", env.Brokers[0])
	} else {
		c.Close()
	}
	if env.KafkaPassword(consoletest.Injector) == "" {
		t.Skip("no stack: no injector credentials")
	}
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	client, err := sarama.NewClient(env.Brokers, env.Kafka(consoletest.Injector, cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	n := time.Now().UnixNano()
	topic, group := fmt.Sprintf("test-console-lag-%d", n), fmt.Sprintf("test-console-%d", n)
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	t.Cleanup(func() {
		_ = admin.DeleteConsumerGroup(group)
		_ = admin.DeleteTopic(topic)
	})
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for i := range 5 {
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	pom, err := om.ManagePartition(topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	pom.MarkOffset(2, "")
	om.Commit()
	pom.AsyncClose()
	if err := om.Close(); err != nil { // releases pom: its errors end
		t.Fatal(err)
	}
	for err := range pom.Errors() {
		t.Fatalf("commit offset 2: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // the oldest record unconsumed is at least this old

	r, err := kafka.Open(kafka.Config{Brokers: env.Brokers, Username: consoletest.Viewer, Password: env.KafkaPassword(consoletest.Viewer),
		Groups: []kafka.Group{{Name: group, Topics: []string{topic}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Lags(); err != nil {
		t.Fatal(err)
	}
	lags, err := r.Lags()
	if err != nil {
		t.Fatal(err)
	}
	if len(lags) != 1 {
		t.Fatalf("lags %+v, want one partition", lags)
	}
	l := lags[0]
	if l.Group != group || l.Committed != 2 || l.End != 5 || l.Records != 3 {
		t.Errorf("lag %+v, want committed 2, end 5, 3 records behind", l)
	}
	if l.Behind < 50*time.Millisecond || l.Behind > time.Minute {
		t.Errorf("behind %v, want the age of the record at offset 2 (between 50ms and a minute)", l.Behind)
	}
	if len(l.Trend) != 2 || l.Trend[0] != 3 || l.Trend[1] != 3 {
		t.Errorf("trend %v, want two samples of 3", l.Trend)
	}
}
