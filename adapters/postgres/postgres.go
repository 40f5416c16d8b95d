// Package postgres implements Vigil's stores on PostgreSQL with pgx. Nothing above this
// package sees pgx: errors are translated into domain errors here.
package postgres

import (
	"context"
	"errors"
	"fmt"
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

// translate turns pgx errors into domain errors: no rows is ENOTFOUND, unique and
// exclusion violations are ECONFLICT, check and foreign-key violations EINVALID,
// connection failures EUNAVAILABLE. Other errors pass through wrapped.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &domain.Error{Code: domain.ENOTFOUND, Message: "Not found.", Err: err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "23P01":
			return &domain.Error{Code: domain.ECONFLICT, Message: "It already exists.", Err: err}
		case "23503", "23514", "23502", "22P02":
			return &domain.Error{Code: domain.EINVALID, Message: "The value is not allowed.", Err: err}
		case "40001", "40P01", "57014":
			return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The database is busy; try again.", Err: err}
		}
		return err
	}
	if pgconn.Timeout(err) || isConnectError(err) {
		return &domain.Error{Code: domain.EUNAVAILABLE, Message: "The database is unavailable.", Err: err}
	}
	return err
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}
