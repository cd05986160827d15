package kafka

import (
	"fmt"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// The broker authenticates every client with SASL/SCRAM-SHA-512 (docs/architecture.md, "Who may
// write what"). sarama speaks the SASL exchange but leaves the SCRAM computation to a client
// the caller supplies; github.com/xdg-go/scram is the implementation sarama's own SCRAM example
// uses.

// Authenticate makes cfg log in as username with password over SASL/SCRAM-SHA-512 and returns
// cfg. An empty username leaves cfg as it is (no authentication: a broker of this stack refuses
// such a client).
func Authenticate(cfg *sarama.Config, username, password string) *sarama.Config {
	if username == "" {
		return cfg
	}
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
	cfg.Net.SASL.User = username
	cfg.Net.SASL.Password = password
	cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	return cfg
}

// scramClient is one SCRAM conversation (sarama.SCRAMClient).
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

// Begin starts a conversation as user.
func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("scram client for %s: %w", user, err)
	}
	c.conv = client.NewConversation()
	return nil
}

// Step answers the broker's challenge.
func (c *scramClient) Step(challenge string) (string, error) {
	return c.conv.Step(challenge)
}

// Done reports whether the conversation has ended.
func (c *scramClient) Done() bool { return c.conv.Done() }
