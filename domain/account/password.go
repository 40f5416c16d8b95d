package account

import (
	_ "embed" // the common-password list
	"fmt"
	"strings"
	"unicode/utf8"
)

// Password length limits, in characters (runes). 10 follows NIST SP 800-63B's advice to
// prefer length over composition rules; 128 bounds the work a request can cause.
const (
	PasswordMinLen = 10
	PasswordMaxLen = 128
)

//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords is the embedded list as a set, built once per Policy.
type commonPasswords map[string]struct{}

func loadCommonPasswords() commonPasswords {
	set := make(commonPasswords, 1200)
	for _, line := range strings.Split(commonPasswordList, "\n") {
		line = strings.ToLower(strings.TrimSpace(line))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[line] = struct{}{}
	}
	return set
}

// PasswordPolicy checks new passwords: 10 to 128 characters and not one of the ~1,100
// most common passwords (compared lower-cased). It never echoes the password back.
type PasswordPolicy struct {
	common commonPasswords
}

// NewPasswordPolicy returns the policy with the embedded common-password list.
func NewPasswordPolicy() *PasswordPolicy { return &PasswordPolicy{common: loadCommonPasswords()} }

// Check returns a field error text for password, "" when it is acceptable.
func (p *PasswordPolicy) Check(password string) string {
	if !utf8.ValidString(password) {
		return "must be valid UTF-8 text"
	}
	n := utf8.RuneCountInString(password)
	switch {
	case n == 0:
		return "is required"
	case n < PasswordMinLen:
		return fmt.Sprintf("must be at least %d characters", PasswordMinLen)
	case n > PasswordMaxLen:
		return fmt.Sprintf("must be at most %d characters", PasswordMaxLen)
	}
	if _, ok := p.common[strings.ToLower(password)]; ok {
		return "is too common; choose a password that is not on lists of frequently used passwords"
	}
	return ""
}

// IsCommon reports whether password is on the embedded list (lower-cased compare).
func (p *PasswordPolicy) IsCommon(password string) bool {
	_, ok := p.common[strings.ToLower(password)]
	return ok
}
