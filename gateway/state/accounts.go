package state

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// ErrExists is what creating a user whose name is taken returns.
var ErrExists = errors.New("state: already exists")

// User is a park staff account. PasswordHash is the argon2id hash in PHC
// form ("" for accounts that sign in only through OIDC).
type User struct {
	Username     string
	DisplayName  string
	Role         string
	PasswordHash string
	Disabled     bool
	Lang         string
	// OIDCSubject is "<issuer> <sub>" for accounts of the park's OpenID
	// Connect provider; "" otherwise.
	OIDCSubject string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Session is a portal session: IDHash is the SHA-256 (hex) of its id, which
// is never stored.
type Session struct {
	IDHash    string
	Username  string
	Method    string
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
}

const userCols = `username, display_name, role, password_hash, disabled, lang, COALESCE(oidc_subject, ''), created_at, updated_at`

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, updated int64
	var disabled int
	err := s.Scan(&u.Username, &u.DisplayName, &u.Role, &u.PasswordHash, &disabled, &u.Lang, &u.OIDCSubject, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return u, ErrNotFound
	}
	u.Disabled = disabled != 0
	u.CreatedAt, u.UpdatedAt = time.UnixMicro(created).UTC(), time.UnixMicro(updated).UTC()
	return u, err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateUser adds u; ErrExists when its username (or OIDC subject) is
// taken.
func (db *DB) CreateUser(ctx context.Context, u User) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO users(username, display_name, role, password_hash, disabled, lang, oidc_subject, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Username, u.DisplayName, u.Role, u.PasswordHash, u.Disabled, u.Lang, nullable(u.OIDCSubject), u.CreatedAt.UnixMicro(), u.CreatedAt.UnixMicro())
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return ErrExists
	}
	return err
}

// User returns the account username; ErrNotFound when there is none.
func (db *DB) User(ctx context.Context, username string) (User, error) {
	return scanUser(db.read.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
}

// UserByOIDCSubject returns the account linked to an OpenID Connect
// subject ("<issuer> <sub>"); ErrNotFound when there is none.
func (db *DB) UserByOIDCSubject(ctx context.Context, subject string) (User, error) {
	return scanUser(db.read.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE oidc_subject = ?`, subject))
}

// Users lists every account by username.
func (db *DB) Users(ctx context.Context) ([]User, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser changes an account: fn gets the stored record and changes
// it; the username is kept. ErrNotFound when there is no such account.
// Disabling an account deletes its sessions in the same transaction.
func (db *DB) UpdateUser(ctx context.Context, username string, at time.Time, fn func(*User)) (User, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return User{}, err
	}
	defer tx.Rollback()
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, username))
	if err != nil {
		return u, err
	}
	fn(&u)
	u.Username, u.UpdatedAt = username, at.UTC()
	if _, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ?, role = ?, password_hash = ?, disabled = ?, lang = ?, oidc_subject = ?, updated_at = ?
		WHERE username = ?`, u.DisplayName, u.Role, u.PasswordHash, u.Disabled, u.Lang, nullable(u.OIDCSubject), at.UnixMicro(), username); err != nil {
		return u, err
	}
	if u.Disabled {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE username = ?`, username); err != nil {
			return u, err
		}
	}
	return u, tx.Commit()
}

// CreateSession records a new session.
func (db *DB) CreateSession(ctx context.Context, s Session) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO sessions(id_hash, username, method, created_at, last_seen, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.Username, s.Method, s.CreatedAt.UnixMicro(), s.LastSeen.UnixMicro(), s.ExpiresAt.UnixMicro())
	return err
}

// Session returns the session whose id hashes to idHash with its user;
// ErrNotFound when there is none.
func (db *DB) Session(ctx context.Context, idHash string) (Session, User, error) {
	var s Session
	var created, seen, expires int64
	row := db.read.QueryRowContext(ctx, `SELECT s.id_hash, s.username, s.method, s.created_at, s.last_seen, s.expires_at,
		u.username, u.display_name, u.role, u.password_hash, u.disabled, u.lang, COALESCE(u.oidc_subject, ''), u.created_at, u.updated_at
		FROM sessions s JOIN users u ON u.username = s.username WHERE s.id_hash = ?`, idHash)
	var u User
	var ucreated, uupdated int64
	var disabled int
	err := row.Scan(&s.IDHash, &s.Username, &s.Method, &created, &seen, &expires,
		&u.Username, &u.DisplayName, &u.Role, &u.PasswordHash, &disabled, &u.Lang, &u.OIDCSubject, &ucreated, &uupdated)
	if errors.Is(err, sql.ErrNoRows) {
		return s, u, ErrNotFound
	}
	if err != nil {
		return s, u, err
	}
	s.CreatedAt, s.LastSeen, s.ExpiresAt = time.UnixMicro(created).UTC(), time.UnixMicro(seen).UTC(), time.UnixMicro(expires).UTC()
	u.Disabled = disabled != 0
	u.CreatedAt, u.UpdatedAt = time.UnixMicro(ucreated).UTC(), time.UnixMicro(uupdated).UTC()
	return s, u, nil
}

// TouchSession moves a session's last use to at (never backwards).
func (db *DB) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	_, err := db.write.ExecContext(ctx, `UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE id_hash = ?`, at.UnixMicro(), idHash)
	return err
}

// DeleteSession deletes a session; deleting one that is gone is no error.
func (db *DB) DeleteSession(ctx context.Context, idHash string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return err
}

// DeleteUserSessions deletes every session of username.
func (db *DB) DeleteUserSessions(ctx context.Context, username string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE username = ?`, username)
	return err
}

// DeleteExpiredSessions deletes the sessions past their absolute expiry at
// now or unused since before idleSince; it returns how many.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) (int64, error) {
	res, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen < ?`, now.UnixMicro(), idleSince.UnixMicro())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// LoginLimit is how failed sign-ins are counted for one key: at most Max
// failures within Window, after which the key is locked for Lockout.
type LoginLimit struct {
	Max     int
	Window  time.Duration
	Lockout time.Duration
}

// LoginLockedUntil returns until when key is locked (zero when it is not
// locked at now).
func (db *DB) LoginLockedUntil(ctx context.Context, key string, now time.Time) (time.Time, error) {
	var until int64
	err := db.read.QueryRowContext(ctx, `SELECT locked_until FROM login_failures WHERE key = ?`, key).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) || err == nil && until <= now.UnixMicro() {
		return time.Time{}, nil
	}
	return time.UnixMicro(until).UTC(), err
}

// RecordLoginFailure counts one failed sign-in for key at now under lim and
// returns until when the key is locked (zero when it is not).
func (db *DB) RecordLoginFailure(ctx context.Context, key string, now time.Time, lim LoginLimit) (time.Time, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return time.Time{}, err
	}
	defer tx.Rollback()
	var failures int
	var start, until int64
	err = tx.QueryRowContext(ctx, `SELECT failures, window_start, locked_until FROM login_failures WHERE key = ?`, key).Scan(&failures, &start, &until)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return time.Time{}, err
	}
	n := now.UnixMicro()
	if start == 0 || n-start >= lim.Window.Microseconds() {
		failures, start = 0, n
	}
	failures++
	if failures >= lim.Max {
		until = n + lim.Lockout.Microseconds()
		failures, start = 0, n // a new window after the lockout
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO login_failures(key, failures, window_start, locked_until) VALUES (?, ?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, locked_until = excluded.locked_until`,
		key, failures, start, until); err != nil {
		return time.Time{}, err
	}
	if err := tx.Commit(); err != nil {
		return time.Time{}, err
	}
	if until <= n {
		return time.Time{}, nil
	}
	return time.UnixMicro(until).UTC(), nil
}

// ClearLoginFailures forgets the failures counted for key (after a good
// sign-in).
func (db *DB) ClearLoginFailures(ctx context.Context, key string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM login_failures WHERE key = ?`, key)
	return err
}
