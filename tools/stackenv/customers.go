package stackenv

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"path/filepath"
	"sync"
	"time"

	"outboxsaga.dev/messaging/customer"
)

// Customers mints customer tokens (messaging/customer) for the tools that place and read orders
// as customers, one per customer, kept for its lifetime less a margin.
type Customers struct {
	key ed25519.PrivateKey
	ttl time.Duration

	mu     sync.Mutex
	tokens map[string]minted
}

// minted is a token and when it is to be minted again.
type minted struct {
	header string
	renew  time.Time
}

// tokenTTL is the lifetime of the tools' tokens; a token is minted again when a quarter is left.
const tokenTTL = time.Hour

// LoadCustomers reads the stack's private key for customer tokens: CUSTOMER_TOKEN_PRIVATE_KEY,
// else the stack's secrets/customer-token-key.
func LoadCustomers() (*Customers, error) {
	b64 := Or(customer.PrivateKeyEnv, readSecret(filepath.Join(Load().StackDir, "secrets", "customer-token-key")))
	if b64 == "" {
		return nil, errors.New(customer.PrivateKeyEnv + " is not set and the stack has no secrets/customer-token-key: run `make up` (or source scripts/lib.sh)")
	}
	key, err := customer.ParsePrivateKey(b64)
	if err != nil {
		return nil, err
	}
	return &Customers{key: key, ttl: tokenTTL, tokens: map[string]minted{}}, nil
}

// Bearer returns the Authorization header value of customer c: "Bearer <token>".
func (cs *Customers) Bearer(c string) (string, error) {
	now := time.Now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if m, ok := cs.tokens[c]; ok && now.Before(m.renew) {
		return m.header, nil
	}
	tok, err := customer.Sign(cs.key, c, cs.ttl, now)
	if err != nil {
		return "", fmt.Errorf("token of customer %q: %w", c, err)
	}
	if len(cs.tokens) > 10_000 { // the tools use a few thousand customers at most
		clear(cs.tokens)
	}
	m := minted{header: "Bearer " + tok, renew: now.Add(cs.ttl * 3 / 4)}
	cs.tokens[c] = m
	return m.header, nil
}

// MustBearer is Bearer for callers whose customers are their own well-formed ids: it panics on
// an error (an id out of the input bounds is a bug of the tool).
func (cs *Customers) MustBearer(c string) string {
	h, err := cs.Bearer(c)
	if err != nil {
		panic(err)
	}
	return h
}
