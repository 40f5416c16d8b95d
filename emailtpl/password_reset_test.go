package emailtpl_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigilhq/vigil/domain"
	"github.com/vigilhq/vigil/emailtpl"
)

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	r := setup(t)
	link := "https://app.vigil.example/reset-password?token=abc_DEF-123"
	email, err := r.PasswordReset(emailtpl.PasswordReset{RecipientName: "<b>Ann</b>", ResetURL: link, ExpiresIn: time.Hour})
	require.NoError(t, err)
	assert.Equal(t, "Reset your Vigil password", email.Subject)
	for name, part := range map[string]string{"html": email.HTML, "text": email.Text} {
		for _, want := range []string{"Reset your password", "expires in an hour", "ignore this email", "works once"} {
			assert.Contains(t, part, want, "%s part", name)
		}
		assert.NotContains(t, part, "Unsubscribe", "%s part: transactional mail has nothing to unsubscribe from", name)
	}
	assert.Contains(t, email.Text, "\n"+link+"\n")
	assert.Contains(t, email.Text, "Hi <b>Ann</b>,")
	assert.Contains(t, email.HTML, `href="`+link+`"`)
	assert.Contains(t, email.HTML, "Hi &lt;b&gt;Ann&lt;/b&gt;,")
	assert.Contains(t, email.HTML, "max-width:600px", "the shared frame")
	assert.NotContains(t, email.HTML, "<style")

	email, err = r.PasswordReset(emailtpl.PasswordReset{ResetURL: link, ExpiresIn: 2 * time.Hour})
	require.NoError(t, err)
	assert.Contains(t, email.Text, "Hello,")
	assert.Contains(t, email.Text, "expires in 2 hours")
	email, err = r.PasswordReset(emailtpl.PasswordReset{ResetURL: link, ExpiresIn: 30 * time.Minute})
	require.NoError(t, err)
	assert.True(t, strings.Contains(email.HTML, "expires in 30 minutes"))
}

func TestPasswordResetInvalid(t *testing.T) {
	t.Parallel()
	r := setup(t)
	for _, d := range []emailtpl.PasswordReset{
		{ResetURL: "/reset-password?token=x", ExpiresIn: time.Hour},
		{ResetURL: "javascript:alert(1)", ExpiresIn: time.Hour},
		{ResetURL: "https://vigil.example/reset-password?token=x"},
	} {
		_, err := r.PasswordReset(d)
		assert.ErrorIs(t, err, domain.ErrInvalid, "%+v", d)
	}
}
