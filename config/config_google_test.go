package config_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/config"
)

func TestLoadGoogleSignIn(t *testing.T) {
	t.Parallel()

	t.Run("OffByDefault", func(t *testing.T) {
		t.Parallel()
		c, err := config.Load(envOf(nil))
		require.NoError(t, err)
		assert.False(t, c.GoogleEnabled())
		assert.Equal(t, "http://localhost:8080/api/auth/google/callback", c.GoogleRedirectURL)
	})

	t.Run("EnabledWithDefaults", func(t *testing.T) {
		t.Parallel()
		c, err := config.Load(envOf(map[string]string{"GOOGLE_CLIENT_ID": "id", "GOOGLE_CLIENT_SECRET": "secret",
			"PUBLIC_BASE_URL": "https://vigil.example/"}))
		require.NoError(t, err)
		assert.True(t, c.GoogleEnabled())
		assert.Equal(t, "https://vigil.example/api/auth/google/callback", c.GoogleRedirectURL)
		assert.Empty(t, c.GoogleIssuer, "empty takes Google's endpoints")
	})

	t.Run("Overrides", func(t *testing.T) {
		t.Parallel()
		c, err := config.Load(envOf(map[string]string{"GOOGLE_CLIENT_ID": "id", "GOOGLE_CLIENT_SECRET": "secret",
			"GOOGLE_REDIRECT_URL": "https://app.example/cb", "GOOGLE_ISSUER": "https://idp.example",
			"GOOGLE_AUTH_URL": "https://idp.example/auth", "GOOGLE_TOKEN_URL": "https://idp.example/token",
			"GOOGLE_JWKS_URL": "https://idp.example/jwks"}))
		require.NoError(t, err)
		assert.Equal(t, []string{"https://app.example/cb", "https://idp.example", "https://idp.example/auth",
			"https://idp.example/token", "https://idp.example/jwks"},
			[]string{c.GoogleRedirectURL, c.GoogleIssuer, c.GoogleAuthURL, c.GoogleTokenURL, c.GoogleJWKSURL})
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		_, err := config.Load(envOf(map[string]string{"GOOGLE_CLIENT_ID": "id"}))
		require.ErrorContains(t, err, "GOOGLE_CLIENT_SECRET")
		_, err = config.Load(envOf(map[string]string{"GOOGLE_CLIENT_ID": "id", "GOOGLE_CLIENT_SECRET": "s",
			"GOOGLE_TOKEN_URL": "ftp://idp.example/token"}))
		require.ErrorContains(t, err, "GOOGLE_TOKEN_URL")
	})
}
