package state

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// LocalToken is the record of one park-local token: what it says, never
// the token itself.
type LocalToken struct {
	ID        string    `json:"id"`
	Subject   string    `json:"sub"`
	Role      string    `json:"role"`
	KeyID     string    `json:"kid"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// RevokedAt is when the token was revoked; zero while it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Revocation is one revoked token id, relevant until ExpiresAt.
type Revocation struct {
	ID        string
	RevokedAt time.Time
	ExpiresAt time.Time
}

// RecordLocalToken records an issued token; recording the same id again
// is a no-op.
func (db *DB) RecordLocalToken(ctx context.Context, t LocalToken) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO local_tokens(id, subject, role, key_id, issued_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		t.ID, t.Subject, t.Role, t.KeyID, t.IssuedAt.UnixMicro(), t.ExpiresAt.UnixMicro())
	return err
}

// LocalTokens lists the recorded tokens newest first: those not yet
// expired at now, or every one when all is set.
func (db *DB) LocalTokens(ctx context.Context, now time.Time, all bool) ([]LocalToken, error) {
	q := `SELECT t.id, t.subject, t.role, t.key_id, t.issued_at, t.expires_at, r.revoked_at
		FROM local_tokens t LEFT JOIN token_revocations r ON r.id = t.id`
	args := []any{}
	if !all {
		q += ` WHERE t.expires_at > ?`
		args = append(args, now.UnixMicro())
	}
	rows, err := db.read.QueryContext(ctx, q+` ORDER BY t.issued_at DESC, t.id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LocalToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// LocalTokenByID returns the record of token id; ErrNotFound when it was
// never recorded.
func (db *DB) LocalTokenByID(ctx context.Context, id string) (LocalToken, error) {
	row := db.read.QueryRowContext(ctx, `SELECT t.id, t.subject, t.role, t.key_id, t.issued_at, t.expires_at, r.revoked_at
		FROM local_tokens t LEFT JOIN token_revocations r ON r.id = t.id WHERE t.id = ?`, id)
	t, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return LocalToken{}, ErrNotFound
	}
	return t, err
}

func scanToken(s interface{ Scan(...any) error }) (LocalToken, error) {
	var t LocalToken
	var issued, expires int64
	var revoked sql.NullInt64
	if err := s.Scan(&t.ID, &t.Subject, &t.Role, &t.KeyID, &issued, &expires, &revoked); err != nil {
		return t, err
	}
	t.IssuedAt, t.ExpiresAt = time.UnixMicro(issued).UTC(), time.UnixMicro(expires).UTC()
	if revoked.Valid {
		t.RevokedAt = time.UnixMicro(revoked.Int64).UTC()
	}
	return t, nil
}

// RevokeLocalToken records that token id is revoked from at, relevant
// until expires (the token's expiry). It returns the revocation as
// stored: an id revoked before keeps its first revocation.
func (db *DB) RevokeLocalToken(ctx context.Context, id string, at, expires time.Time) (Revocation, error) {
	if _, err := db.write.ExecContext(ctx, `INSERT INTO token_revocations(id, revoked_at, expires_at) VALUES (?, ?, ?)
		ON CONFLICT(id) DO NOTHING`, id, at.UnixMicro(), expires.UnixMicro()); err != nil {
		return Revocation{}, err
	}
	var r Revocation
	var rev, exp int64
	err := db.write.QueryRowContext(ctx, `SELECT id, revoked_at, expires_at FROM token_revocations WHERE id = ?`, id).Scan(&r.ID, &rev, &exp)
	r.RevokedAt, r.ExpiresAt = time.UnixMicro(rev).UTC(), time.UnixMicro(exp).UTC()
	return r, err
}

// Revocations lists the revocations still relevant at now (their tokens
// not yet expired).
func (db *DB) Revocations(ctx context.Context, now time.Time) ([]Revocation, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, revoked_at, expires_at FROM token_revocations WHERE expires_at > ? ORDER BY id`, now.UnixMicro())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Revocation
	for rows.Next() {
		var r Revocation
		var rev, exp int64
		if err := rows.Scan(&r.ID, &rev, &exp); err != nil {
			return nil, err
		}
		r.RevokedAt, r.ExpiresAt = time.UnixMicro(rev).UTC(), time.UnixMicro(exp).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
