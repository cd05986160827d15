package postgres

import (
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/lib/pq"
)

// IsUnavailable reports whether err says that the database (or another peer over the network)
// could not be reached or went away, rather than that the statement was wrong: a refused or
// reset connection, a broken one (driver.ErrBadConn, EOF), a server that is shutting down,
// starting up or recovering after a crash (SQLSTATE class 57), out of connections or resources
// (class 53), a connection exception (class 08), or a transaction rolled back by a
// serialization failure or deadlock (class 40). Running the same work again later can succeed.
//
// The consumers pass it to kafka.Retry: a message that fails only because Postgres is down is
// retried until Postgres is back, never dead-lettered (the chaos tool found events of a killed
// Postgres in the dead letters, their saga steps never applied).
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if pqErr, ok := errors.AsType[*pq.Error](err); ok {
		switch pqErr.Code.Class() {
		case "08", "40", "53", "57":
			return true
		}
	}
	return false
}
