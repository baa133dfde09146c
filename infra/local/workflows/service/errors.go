package service

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an API error with Google's status vocabulary.
type Error struct {
	HTTP    int
	Status  string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Status, e.Message) }

func errf(code int, status, format string, args ...any) *Error {
	return &Error{HTTP: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// Constructors for the statuses the API uses.
func notFound(format string, args ...any) *Error {
	return errf(http.StatusNotFound, "NOT_FOUND", format, args...)
}
func invalid(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, "INVALID_ARGUMENT", format, args...)
}
func exists(format string, args ...any) *Error {
	return errf(http.StatusConflict, "ALREADY_EXISTS", format, args...)
}
func precondition(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, "FAILED_PRECONDITION", format, args...)
}
func internal(format string, args ...any) *Error {
	return errf(http.StatusInternalServerError, "INTERNAL", format, args...)
}

// AsError converts any error to an *Error (INTERNAL when it is not one).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal("%v", err)
}
