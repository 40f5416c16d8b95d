// Package account holds Vigil's accounts: the User entity, the password policy, refresh
// sessions and the use cases behind /api/auth and /api/me (register, log in, refresh, log
// out, read, update and delete one's own account), with the audit trail they leave.
//
// The package is pure: hashing, signing and storage are ports (ports.go) that adapters
// satisfy — adapters/password (bcrypt), adapters/tokens (JWT) and adapters/postgres.
//
// Security decisions that live here rather than in the adapters:
//   - Login answers "Email or password is incorrect." for an unknown email, a user without
//     a password and a wrong password alike, and pays one password compare in every case
//     (a dummy hash for unknown emails), so neither the answer nor the time tells whether
//     an account exists.
//   - In private beta, login checks credentials first and the allowlist second, so the
//     403 only ever goes to someone who proved the password; register checks the allowlist
//     before the email's uniqueness, so an outsider cannot probe which emails exist.
//   - Refresh tokens are 256-bit random values stored only as SHA-256 hashes. Each use
//     spends the token and issues a child in the same family; a spent token presented again
//     revokes the whole family (the thief's and the owner's newest token alike).
package account
