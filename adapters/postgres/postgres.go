// Package postgres implements Vigil's stores on PostgreSQL with pgx. Nothing above this
// package sees pgx: errors are translated into domain errors here.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigilhq/vigil/domain"
)

// PoolConfig sets the pool's explicit limits.
type PoolConfig struct {
	URL               string
	AppName           string // application_name, e.g. vigil-recorder
	MaxConns          int32
	MinConns          int32
	HealthCheckPeriod time.Duration
	StatementTimeout  time.Duration
	// ConnectWait bounds how long Open waits for a server that refuses for now (starting
	// up, or at max_connections); zero means ConnectWaitDefault.
	ConnectWait time.Duration
}

// Defaults for PoolConfig fields left zero.
const (
	MaxConnsDefault          = 10
	HealthCheckPeriodDefault = 30 * time.Second
	StatementTimeoutDefault  = 30 * time.Second
	ConnectWaitDefault       = 30 * time.Second
)

// Open connects a pool and checks the server answers.
func Open(ctx context.Context, c PoolConfig) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.MaxConns = max(c.MaxConns, 1)
	if c.MaxConns == 0 {
		cfg.MaxConns = MaxConnsDefault
	}
	cfg.MinConns = min(c.MinConns, cfg.MaxConns)
	cfg.HealthCheckPeriod = HealthCheckPeriodDefault
	if c.HealthCheckPeriod > 0 {
		cfg.HealthCheckPeriod = c.HealthCheckPeriod
	}
	timeout := StatementTimeoutDefault
	if c.StatementTimeout > 0 {
		timeout = c.StatementTimeout
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(timeout.Milliseconds())
	if c.AppName != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = c.AppName
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	wait := ConnectWaitDefault
	if c.ConnectWait > 0 {
		wait = c.ConnectWait
	}
	if err := ping(ctx, pool, wait); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return pool, nil
}

// ping waits up to wait for the server to accept a connection. A process started beside its
// database, or while other processes hold every connection slot, comes up once the server
// does instead of exiting; anything else (a wrong password, a missing database) fails at once.
func ping(ctx context.Context, pool *pgxpool.Pool, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	policy := backoff.WithContext(backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(100*time.Millisecond), backoff.WithMaxInterval(2*time.Second), backoff.WithMaxElapsedTime(0)), ctx)
	var last error
	err := backoff.Retry(func() error {
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		last = pool.Ping(pingCtx)
		if last != nil && !refusedForNow(last) {
			return backoff.Permanent(last)
		}
		return last
	}, policy)
	if err != nil && last != nil {
		return last
	}
	return err
}

// refusedForNow tells the refusals that pass on their own: too many connections (53300),
// the server starting or shutting down (57P03, 57P01), or nothing listening yet.
func refusedForNow(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "53300", "57P01", "57P03":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) && errors.Is(err, syscall.ECONNREFUSED)
}

// InTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", translate(err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", translate(err))
	}
	return nil
}

// translate turns pgx errors into domain errors; see Translate.
func translate(err error) error { return Translate(err) }

// Translate is the one translation of database errors into domain errors, so that no
// input and no outage reaches a client as a 500:
//   - no rows is ENOTFOUND; unique and exclusion violations are ECONFLICT;
//   - check, foreign-key and not-null violations, and every data exception (SQLSTATE class
//     22: a NUL byte, a byte sequence that is not UTF-8, a value that is not a date, out of
//     range, too long), are EINVALID, naming the column when the server names one;
//   - the server or the connection being unavailable (class 08, 57P01 to 57P03, too many
//     connections, a connection that died mid-statement, a pool that gave no connection in
//     time) and contention (serialization failures, deadlocks, a cancelled statement) are
//     EUNAVAILABLE, which the API answers 503 with Retry-After.
//
// Errors that are none of these, and domain errors, pass through unchanged.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &domain.Error{Code: domain.ENOTFOUND, Message: "Not found.", Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return translateState(pgErr, err)
	}
	if unavailable(err) {
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The database is unavailable; try again.", Err: err}
	}
	return err
}

func translateState(pgErr *pgconn.PgError, err error) error {
	code := pgErr.Code
	switch {
	case code == "23505" || code == "23P01":
		return &domain.Error{Code: domain.ECONFLICT, Message: "It already exists.", Err: err}
	case code == "23503" || code == "23514" || code == "23502":
		e := &domain.Error{Code: domain.EINVALID, Message: "The value is not allowed.", Err: err}
		if code == "23502" && pgErr.ColumnName != "" {
			e.Fields = map[string]string{pgErr.ColumnName: "is required"}
		}
		return e
	case strings.HasPrefix(code, "22"):
		e := &domain.Error{Code: domain.EINVALID, Message: "A value is not valid: it " + dataProblem(code) + ".", Err: err}
		if pgErr.ColumnName != "" {
			e.Fields = map[string]string{pgErr.ColumnName: dataProblem(code)}
		}
		return e
	case code == "40001" || code == "40P01" || code == "57014" || code == "55P03":
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The database is busy; try again.", Err: err}
	case strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") ||
		code == "57P01" || code == "57P02" || code == "57P03" || code == "57P05":
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The database is unavailable; try again.", Err: err}
	}
	return err
}

// dataProblem says what is wrong with a value the server refused with a data exception.
func dataProblem(code string) string {
	switch code {
	case "22021":
		return "contains a NUL byte or bytes that are not UTF-8"
	case "22007", "22008":
		return "is not a valid date and time"
	case "22003":
		return "is out of range"
	case "22001":
		return "is too long"
	case "22P02":
		return "is not of the right form"
	case "22P05":
		return "contains characters that cannot be stored"
	}
	return "cannot be stored"
}

// unavailable tells errors that mean no answer could be had from the server: it refused or
// dropped the connection, the connection broke mid-statement, or no connection was free in
// time (a pool timeout while the request itself still had time is also a deadline).
func unavailable(err error) bool {
	if isConnectError(err) || pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	// pgx reports a pooled connection that the server closed, and a closed pool, by text only.
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "closed pool")
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}
