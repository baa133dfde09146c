package devauth

import (
	"net"
	"net/http"
	"net/url"
)

// LoopbackCORS lets pages served on this machine (the gateway's console on the local stack)
// ask h from the browser: the issuer runs on another port, so another origin. An origin that
// is not http on a loopback host is refused outright, so no page from elsewhere can have a
// token minted, even one whose answer it could not read.
func LoopbackCORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" { // not a browser's cross-origin call: curl, the CLI
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		if !loopbackOrigin(origin) {
			tokenError(w, http.StatusForbidden, "origin "+origin+" is not on this machine; the development issuer serves loopback pages only")
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
