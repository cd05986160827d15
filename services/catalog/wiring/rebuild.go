package wiring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/IBM/sarama"
	"github.com/rs/zerolog"

	"outboxsaga.dev/catalog/app"
	"outboxsaga.dev/catalog/postgres"
	"outboxsaga.dev/catalog/saga"
	"outboxsaga.dev/messaging"
	"outboxsaga.dev/messaging/kafka"
	msgpg "outboxsaga.dev/messaging/postgres"
	"outboxsaga.dev/schemas"
)

// ErrDifferences is what Rebuild returns when the live read models differ from the topics.
var ErrDifferences = errors.New("the read models differ from the topics")

// Rebuild is `catalog rebuild` (make rebuild): it reads the catalog's topics from their first
// offsets up to their last as of the start, through the service's own decoding and Router, into
// fresh tables (postgres.RebuildSchema, as the owner role of CATALOG_MIGRATIONS_DATABASE_URL, else
// CATALOG_DATABASE_URL), compares them with the live read models, prints `catalog: rebuilt N
// products: D differences` (and the differing rows) to out, and drops them. It returns
// ErrDifferences when D > 0. The service keeps running; a catalog that lags the topics shows its
// lag as differences, so run it at quiescence.
func Rebuild(ctx context.Context, cfg Config, out io.Writer) error {
	zone, err := cfg.Zone()
	if err != nil {
		return err
	}
	url := cfg.OwnerURL()
	owner, err := cfg.OpenOwner(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer owner.Close()
	if err := postgres.PrepareRebuild(ctx, owner); err != nil {
		return err
	}
	defer func() { _ = postgres.DropRebuild(context.WithoutCancel(ctx), owner) }()
	fresh, err := msgpg.Open(ctx, postgres.RebuildURL(url), 4, 30*time.Second)
	if err != nil {
		return fmt.Errorf("rebuild: open the fresh tables: %w", err)
	}
	defer fresh.Close()

	start := time.Now()
	router := saga.New(fresh, app.New(postgres.NewCatalog(fresh), zone)).Router()
	v, err := schemas.New()
	if err != nil {
		return err
	}
	handle := messaging.Chain(router.Dispatch, kafka.DecodeKeyed(v, router.Keyed()))
	hctx := zerolog.Nop().WithContext(ctx)
	n, err := scanTopics(ctx, cfg, func(m *messaging.Message) error { return handle(hctx, m) })
	if err != nil {
		return err
	}
	rep, err := postgres.CompareRebuild(ctx, owner)
	if err != nil {
		return err
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(out, "catalog: differs: %s\n", d)
	}
	fmt.Fprintf(out, "catalog: read %d records in %s\n", n, time.Since(start).Round(time.Millisecond))
	// The line DESIGN fixes, last: `<service>: rebuilt N <things>: D differences`.
	fmt.Fprintf(out, "catalog: rebuilt %d products: %d differences\n", rep.Products, len(rep.Differences))
	if len(rep.Differences) > 0 {
		return ErrDifferences
	}
	return nil
}

// scanTopics hands every record of the catalog's topics, from the oldest offset of each partition
// to its newest as of the call, to f, one partition after the other (the order within a
// partition, one key's order, is kept). It reads as the service's principal, without a group.
func scanTopics(ctx context.Context, cfg Config, f func(*messaging.Message) error) (int, error) {
	client, err := sarama.NewClient(cfg.KafkaBrokers, kafka.NewConfig(Service+"-rebuild", cfg.KafkaUsername, cfg.KafkaPassword))
	if err != nil {
		return 0, fmt.Errorf("rebuild: kafka: %w", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return 0, fmt.Errorf("rebuild: kafka consumer: %w", err)
	}
	defer consumer.Close()
	total := 0
	for _, topic := range saga.Topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return total, fmt.Errorf("rebuild: partitions of %s: %w", topic, err)
		}
		for _, p := range parts {
			oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return total, fmt.Errorf("rebuild: %s[%d]: %w", topic, p, err)
			}
			newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return total, fmt.Errorf("rebuild: %s[%d]: %w", topic, p, err)
			}
			if newest <= oldest {
				continue
			}
			pc, err := consumer.ConsumePartition(topic, p, oldest)
			if err != nil {
				return total, fmt.Errorf("rebuild: %s[%d]: %w", topic, p, err)
			}
			for off := oldest; off < newest; {
				select {
				case <-ctx.Done():
					pc.Close()
					return total, ctx.Err()
				case e := <-pc.Errors():
					pc.Close()
					return total, fmt.Errorf("rebuild: %s[%d]: %w", topic, p, e)
				case r := <-pc.Messages():
					off = r.Offset + 1
					if err := f(toMessage(r)); err != nil && !messaging.IsPermanent(err) {
						pc.Close()
						return total, fmt.Errorf("rebuild: %s[%d]@%d: %w", topic, p, r.Offset, err)
					}
					total++
				}
			}
			pc.Close()
		}
	}
	return total, nil
}

// toMessage is a Kafka record as the consumer hands it to its chain.
func toMessage(r *sarama.ConsumerMessage) *messaging.Message {
	h := make(map[string]string, len(r.Headers))
	for _, kv := range r.Headers {
		h[string(kv.Key)] = string(kv.Value)
	}
	tp, _ := messaging.ParseTraceparent(h["traceparent"])
	return &messaging.Message{Traceparent: tp, Record: messaging.Record{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: r.Value, Headers: h}}
}
