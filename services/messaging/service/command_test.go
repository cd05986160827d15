package service_test

import (
	"context"
	"errors"
	"testing"

	"outboxsaga.dev/messaging/service"
)

// TestCommandExitStatus: 0 when the command succeeds (with the loaded configuration), 1 when it
// fails, 2 when the configuration cannot be read (the command does not run).
func TestCommandExitStatus(t *testing.T) {
	loaded := func() (string, error) { return "cfg", nil }
	var got string
	ok := func(_ context.Context, cfg string) error { got = cfg; return nil }
	if code := service.Command("svc", loaded, ok); code != 0 || got != "cfg" {
		t.Errorf("success: exit %d, config %q; want 0, cfg", code, got)
	}
	failing := func(context.Context, string) error { return errors.New("differs") }
	if code := service.Command("svc", loaded, failing); code != 1 {
		t.Errorf("failing command: exit %d, want 1", code)
	}
	ran := false
	unreadable := func() (string, error) { return "", errors.New("bad setting") }
	if code := service.Command("svc", unreadable, func(context.Context, string) error { ran = true; return nil }); code != 2 || ran {
		t.Errorf("unreadable configuration: exit %d, ran %v; want 2, false", code, ran)
	}
}
