package httpapi

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/vigilhq/vigil/domain/account"
)

// PasswordResets is what the password reset handlers need; *account.Service satisfies it.
type PasswordResets interface {
	// ForgotPassword starts a reset; nil whether or not the account exists. EINVALID only
	// for a malformed email.
	ForgotPassword(ctx context.Context, email string, cl account.Client) error
	// ResetPassword sets a new password with a reset token. EINVALID for a bad token
	// (field "token") or password (field "password"), EFORBIDDEN for disabled accounts.
	ResetPassword(ctx context.Context, token, password string, cl account.Client) error
}

// ForgotPasswordMessage is the one answer to every accepted forgot-password request.
const ForgotPasswordMessage = "If an account exists for this email, a link to reset its password is on its way. " +
	"The link expires in an hour."

// ForgotPasswordResponse is the body of POST /api/auth/password/forgot: the same for
// every email, so it does not tell whether an account exists.
type ForgotPasswordResponse struct {
	Message string `json:"message"`
}

// registerPasswordReset serves POST /api/auth/password/forgot and /password/reset on the
// /api/auth group when Config.PasswordResets is set.
func (s *Server) registerPasswordReset(auth *echo.Group) {
	if s.cfg.PasswordResets == nil {
		return
	}
	auth.POST("/password/forgot", s.forgotPassword)
	auth.POST("/password/reset", s.resetPassword)
}

type forgotPasswordRequest struct {
	Email string `json:"email"`
}

func (s *Server) forgotPassword(c echo.Context) error {
	var req forgotPasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.cfg.PasswordResets.ForgotPassword(c.Request().Context(), req.Email, clientOf(c)); err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusAccepted, ForgotPasswordResponse{Message: ForgotPasswordMessage})
}

type resetPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

func (s *Server) resetPassword(c echo.Context) error {
	var req resetPasswordRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if err := s.cfg.PasswordResets.ResetPassword(c.Request().Context(), req.Token, req.Password, clientOf(c)); err != nil {
		return err
	}
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}
