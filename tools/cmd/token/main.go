// Command token prints a customer token (a JWT signed with the stack's key; messaging/customer)
// alone on one line, for curl's -H @file and the scripts:
//
//	CUSTOMER_TOKEN_PRIVATE_KEY=... go run ./cmd/token -customer U1 [-ttl 24h]
//
// The private key is read from CUSTOMER_TOKEN_PRIVATE_KEY only (standard base64 of its PKCS #8
// DER): `make -s token CUSTOMER=U1` exports the stack's. It never takes a secret on its command
// line.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"outboxsaga.dev/messaging/customer"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "token:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	id := fs.String("customer", "", "the customer id: the token's subject (required)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" || fs.NArg() > 0 {
		return errors.New("usage: token -customer <id> [-ttl 24h]")
	}
	key := os.Getenv(customer.PrivateKeyEnv)
	if key == "" {
		return errors.New(customer.PrivateKeyEnv + " is not set: run `make -s token CUSTOMER=<id>`, which exports the stack's key")
	}
	tok, err := customer.Mint(key, *id, *ttl)
	if err != nil {
		return err
	}
	_, err = fmt.Println(tok)
	return err
}
