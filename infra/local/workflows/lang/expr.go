package lang

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expr is a parsed expression.
type Expr interface {
	eval(env Env) (any, error)
}

// Env resolves variables and functions during evaluation.
type Env interface {
	Lookup(name string) (any, bool)
	Call(fn string, args []any) (any, error)
}

// Functions lets the compiler check names and arity at deploy time.
type Functions interface {
	// Signature returns the parameter names in positional order and how many
	// are required; variadic functions accept any count from required up.
	// ok is false for an unknown function.
	Signature(name string) (params []string, required int, variadic bool, ok bool)
}

type (
	litExpr struct{ v any }
	varExpr struct{ name string }
	dotExpr struct {
		x   Expr
		key string
	}
	indexExpr struct{ x, i Expr }
	callExpr  struct {
		fn   string
		args []Expr
	}
	unaryExpr struct {
		op string
		x  Expr
	}
	binExpr struct {
		op   string
		l, r Expr
	}
	listExpr struct{ elems []Expr }
	mapExpr  struct {
		keys []string
		vals []Expr
	}
)

// ---- lexer ----

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tInt
	tFloat
	tString
	tOp
)

type token struct {
	kind tokKind
	s    string
	pos  int
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '_' || isLetter(c):
			j := i + 1
			for j < len(src) && (src[j] == '_' || isLetter(src[j]) || isDigit(src[j])) {
				j++
			}
			word := src[i:j]
			switch word {
			case "AND", "OR", "NOT":
				// Google accepts logical operators in lower or upper case.
				word = strings.ToLower(word)
			}
			toks = append(toks, token{tIdent, word, i})
			i = j
		case isDigit(c):
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			kind := tInt
			if j < len(src) && src[j] == '.' && j+1 < len(src) && isDigit(src[j+1]) {
				kind = tFloat
				j++
				for j < len(src) && isDigit(src[j]) {
					j++
				}
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && isDigit(src[k]) {
					kind = tFloat
					j = k
					for j < len(src) && isDigit(src[j]) {
						j++
					}
				}
			}
			toks = append(toks, token{kind, src[i:j], i})
			i = j
		case c == '"' || c == '\'':
			s, n, err := lexString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("at %d: %w", i, err)
			}
			toks = append(toks, token{tString, s, i})
			i += n
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=", "//":
				toks = append(toks, token{tOp, two, i})
				i += 2
				continue
			}
			if strings.IndexByte("+-*/%<>()[]{},.:", c) >= 0 {
				toks = append(toks, token{tOp, string(c), i})
				i++
				continue
			}
			return nil, fmt.Errorf("unexpected character %q at %d", c, i)
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

func lexString(src string) (string, int, error) {
	q := src[0]
	var b strings.Builder
	i := 1
	for i < len(src) {
		c := src[i]
		if c == q {
			return b.String(), i + 1, nil
		}
		if c != '\\' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 >= len(src) {
			break
		}
		e := src[i+1]
		i += 2
		switch e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case '\\', '"', '\'', '/':
			b.WriteByte(e)
		case 'u':
			if i+4 > len(src) {
				return "", 0, fmt.Errorf("short \\u escape")
			}
			n, err := strconv.ParseUint(src[i:i+4], 16, 32)
			if err != nil {
				return "", 0, fmt.Errorf("bad \\u escape %q", src[i:i+4])
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			return "", 0, fmt.Errorf("unknown escape \\%c", e)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// ---- parser ----

type parser struct {
	toks  []token
	p     int
	fns   Functions
	depth int
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 200

// ParseExpr parses the text between "${" and "}". fns may be nil (no
// function check).
func ParseExpr(src string, fns Functions) (Expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	p := &parser{toks: toks, fns: fns}
	e, err := p.parseOr()
	if err != nil {
		return nil, fmt.Errorf("expression %q: %w", src, err)
	}
	if p.peek().kind != tEOF {
		return nil, fmt.Errorf("expression %q: unexpected %q at %d", src, p.peek().s, p.peek().pos)
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.p] }
func (p *parser) next() token {
	t := p.toks[p.p]
	if t.kind != tEOF {
		p.p++
	}
	return t
}
func (p *parser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tOp && t.s == s
}
func (p *parser) isKw(s string) bool {
	t := p.peek()
	return t.kind == tIdent && t.s == s
}
func (p *parser) expect(s string) error {
	if !p.isOp(s) {
		t := p.peek()
		if t.kind == tEOF {
			return fmt.Errorf("expected %q at end", s)
		}
		return fmt.Errorf("expected %q at %d, got %q", s, t.pos, t.s)
	}
	p.next()
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return fmt.Errorf("expression nested too deeply")
	}
	return nil
}

// Precedence, loosest first: or, and, comparison and in, + -, * / // %,
// unary - and not, then postfix . [] ().
func (p *parser) parseOr() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isKw("or") {
		p.next()
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &binExpr{"or", l, r}
	}
	return l, nil
}

func (p *parser) parseAnd() (Expr, error) {
	l, err := p.parseCmp()
	if err != nil {
		return nil, err
	}
	for p.isKw("and") {
		p.next()
		r, err := p.parseCmp()
		if err != nil {
			return nil, err
		}
		l = &binExpr{"and", l, r}
	}
	return l, nil
}

func (p *parser) parseCmp() (Expr, error) {
	l, err := p.parseAdd()
	if err != nil {
		return nil, err
	}
	for {
		var op string
		switch {
		case p.isOp("=="), p.isOp("!="), p.isOp("<"), p.isOp("<="), p.isOp(">"), p.isOp(">="):
			op = p.next().s
		case p.isKw("in"):
			p.next()
			op = "in"
		case p.isKw("not") && p.p+1 < len(p.toks) && p.toks[p.p+1].kind == tIdent && p.toks[p.p+1].s == "in":
			p.next()
			p.next()
			op = "not in"
		default:
			return l, nil
		}
		r, err := p.parseAdd()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op, l, r}
	}
}

func (p *parser) parseAdd() (Expr, error) {
	l, err := p.parseMul()
	if err != nil {
		return nil, err
	}
	for p.isOp("+") || p.isOp("-") {
		op := p.next().s
		r, err := p.parseMul()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op, l, r}
	}
	return l, nil
}

func (p *parser) parseMul() (Expr, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isOp("*") || p.isOp("/") || p.isOp("//") || p.isOp("%") {
		op := p.next().s
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &binExpr{op, l, r}
	}
	return l, nil
}

func (p *parser) parseUnary() (Expr, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if p.isOp("-") || p.isOp("+") || p.isKw("not") {
		op := p.next().s
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &unaryExpr{op, x}, nil
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() (Expr, error) {
	x, err := p.parsePrimary()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isOp("."):
			p.next()
			t := p.next()
			if t.kind != tIdent {
				return nil, fmt.Errorf("expected name after '.' at %d", t.pos)
			}
			if p.isOp("(") {
				name, ok := dottedName(x)
				if !ok {
					return nil, fmt.Errorf("cannot call %q at %d", t.s, t.pos)
				}
				x, err = p.parseCall(name + "." + t.s)
				if err != nil {
					return nil, err
				}
				continue
			}
			x = &dotExpr{x, t.s}
		case p.isOp("["):
			p.next()
			i, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			x = &indexExpr{x, i}
		case p.isOp("("):
			name, ok := dottedName(x)
			if !ok {
				return nil, fmt.Errorf("unexpected '(' at %d", p.peek().pos)
			}
			x, err = p.parseCall(name)
			if err != nil {
				return nil, err
			}
		default:
			return x, nil
		}
	}
}

func dottedName(x Expr) (string, bool) {
	switch e := x.(type) {
	case *varExpr:
		return e.name, true
	case *dotExpr:
		s, ok := dottedName(e.x)
		return s + "." + e.key, ok
	}
	return "", false
}

func (p *parser) parseCall(name string) (Expr, error) {
	pos := p.peek().pos
	p.next() // (
	var args []Expr
	for !p.isOp(")") {
		a, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		if !p.isOp(",") {
			break
		}
		p.next()
	}
	if err := p.expect(")"); err != nil {
		return nil, err
	}
	if p.fns != nil {
		params, min, variadic, ok := p.fns.Signature(name)
		max := len(params)
		if variadic {
			max = -1
		}
		if !ok {
			return nil, fmt.Errorf("unknown function %q at %d", name, pos)
		}
		if len(args) < min || (max >= 0 && len(args) > max) {
			return nil, fmt.Errorf("function %q takes %s arguments, got %d", name, arityText(min, max), len(args))
		}
	}
	return &callExpr{name, args}, nil
}

func arityText(min, max int) string {
	switch {
	case max < 0:
		return fmt.Sprintf("at least %d", min)
	case min == max:
		return strconv.Itoa(min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}

func (p *parser) parsePrimary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tInt:
		n, err := strconv.ParseInt(t.s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(t.s, 64)
			if ferr != nil {
				return nil, fmt.Errorf("bad number %q", t.s)
			}
			return &litExpr{f}, nil
		}
		return &litExpr{n}, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.s, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", t.s)
		}
		return &litExpr{f}, nil
	case tString:
		return &litExpr{t.s}, nil
	case tIdent:
		switch t.s {
		case "true", "True", "TRUE":
			return &litExpr{true}, nil
		case "false", "False", "FALSE":
			return &litExpr{false}, nil
		case "null":
			return &litExpr{nil}, nil
		case "and", "or", "in", "not":
			return nil, fmt.Errorf("unexpected %q at %d", t.s, t.pos)
		}
		return &varExpr{t.s}, nil
	case tOp:
		switch t.s {
		case "(":
			e, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			return e, p.expect(")")
		case "[":
			var elems []Expr
			for !p.isOp("]") {
				e, err := p.parseOr()
				if err != nil {
					return nil, err
				}
				elems = append(elems, e)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return &listExpr{elems}, p.expect("]")
		case "{":
			m := &mapExpr{}
			for !p.isOp("}") {
				k := p.next()
				if k.kind != tString && k.kind != tIdent {
					return nil, fmt.Errorf("expected map key at %d", k.pos)
				}
				if err := p.expect(":"); err != nil {
					return nil, err
				}
				v, err := p.parseOr()
				if err != nil {
					return nil, err
				}
				m.keys = append(m.keys, k.s)
				m.vals = append(m.vals, v)
				if !p.isOp(",") {
					break
				}
				p.next()
			}
			return m, p.expect("}")
		}
	case tEOF:
		return nil, fmt.Errorf("unexpected end of expression")
	}
	return nil, fmt.Errorf("unexpected %q at %d", t.s, t.pos)
}

// MaxValueBytes is Google's 512 KB variable limit, applied at once to the
// operations that can double a value's size in one step.
const MaxValueBytes = 512 * 1024

// ---- evaluation ----

// Eval evaluates e in env.
func Eval(e Expr, env Env) (any, error) { return e.eval(env) }

func (e *litExpr) eval(Env) (any, error) { return e.v, nil }

func (e *varExpr) eval(env Env) (any, error) {
	v, ok := env.Lookup(e.name)
	if !ok {
		return nil, Errorf(TagKey, "variable %q not found", e.name)
	}
	return v, nil
}

func (e *dotExpr) eval(env Env) (any, error) {
	x, err := e.x.eval(env)
	if err != nil {
		return nil, err
	}
	m, ok := x.(map[string]any)
	if !ok {
		return nil, Errorf(TagType, "cannot access key %q of %s", e.key, TypeName(x))
	}
	v, ok := m[e.key]
	if !ok {
		return nil, Errorf(TagKey, "key not found: %s", e.key)
	}
	return v, nil
}

func (e *indexExpr) eval(env Env) (any, error) {
	x, err := e.x.eval(env)
	if err != nil {
		return nil, err
	}
	i, err := e.i.eval(env)
	if err != nil {
		return nil, err
	}
	return Index(x, i)
}

// Index implements x[i] for lists and maps.
func Index(x, i any) (any, error) {
	switch c := x.(type) {
	case []any:
		n, ok := i.(int64)
		if !ok {
			return nil, Errorf(TagType, "list index must be integer, got %s", TypeName(i))
		}
		if n < 0 || n >= int64(len(c)) {
			return nil, Errorf(TagIndex, "list index out of range: %d", n)
		}
		return c[n], nil
	case map[string]any:
		k, ok := i.(string)
		if !ok {
			return nil, Errorf(TagType, "map key must be string, got %s", TypeName(i))
		}
		v, ok := c[k]
		if !ok {
			return nil, Errorf(TagKey, "key not found: %s", k)
		}
		return v, nil
	}
	return nil, Errorf(TagType, "cannot index %s", TypeName(x))
}

func (e *callExpr) eval(env Env) (any, error) {
	args := make([]any, len(e.args))
	for i, a := range e.args {
		v, err := a.eval(env)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	return env.Call(e.fn, args)
}

func (e *listExpr) eval(env Env) (any, error) {
	out := make([]any, len(e.elems))
	for i, x := range e.elems {
		v, err := x.eval(env)
		if err != nil {
			return nil, err
		}
		out[i] = Copy(v)
	}
	return out, nil
}

func (e *mapExpr) eval(env Env) (any, error) {
	out := make(map[string]any, len(e.keys))
	for i, k := range e.keys {
		v, err := e.vals[i].eval(env)
		if err != nil {
			return nil, err
		}
		out[k] = Copy(v)
	}
	return out, nil
}

func (e *unaryExpr) eval(env Env) (any, error) {
	x, err := e.x.eval(env)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "not":
		b, err := Truthy(x)
		if err != nil {
			return nil, err
		}
		return !b, nil
	case "-":
		switch n := x.(type) {
		case int64:
			if n == math.MinInt64 {
				return nil, Errorf(TagValue, "integer overflow")
			}
			return -n, nil
		case float64:
			return -n, nil
		}
	case "+":
		switch x.(type) {
		case int64, float64:
			return x, nil
		}
	}
	return nil, Errorf(TagType, "unary %s not supported for %s", e.op, TypeName(x))
}

func (e *binExpr) eval(env Env) (any, error) {
	l, err := e.l.eval(env)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "and", "or":
		lb, err := Truthy(l)
		if err != nil {
			return nil, err
		}
		if (e.op == "and") != lb {
			return lb, nil
		}
		r, err := e.r.eval(env)
		if err != nil {
			return nil, err
		}
		return Truthy(r)
	}
	r, err := e.r.eval(env)
	if err != nil {
		return nil, err
	}
	return Binary(e.op, l, r)
}

// Binary applies a binary operator with Google's integer/double rules:
// integer op integer stays integer (except /), anything with a double is a
// double, and integer overflow is an error rather than a silent wrap.
func Binary(op string, l, r any) (any, error) {
	switch op {
	case "==":
		return Equal(l, r), nil
	case "!=":
		return !Equal(l, r), nil
	case "in", "not in":
		found, err := contains(r, l)
		if err != nil {
			return nil, err
		}
		return found == (op == "in"), nil
	case "<", "<=", ">", ">=":
		c, err := compare(l, r)
		if err != nil {
			return nil, err
		}
		switch op {
		case "<":
			return c < 0, nil
		case "<=":
			return c <= 0, nil
		case ">":
			return c > 0, nil
		}
		return c >= 0, nil
	case "+":
		if ls, ok := l.(string); ok {
			if rs, ok := r.(string); ok {
				if len(ls)+len(rs) > MaxValueBytes {
					return nil, Errorf(TagResourceLimit, "ResourceLimitError: Memory usage limit exceeded (string of %d bytes)", len(ls)+len(rs))
				}
				return ls + rs, nil
			}
		}
		if ll, ok := l.([]any); ok {
			if rl, ok := r.([]any); ok {
				if len(ll)+len(rl) > MaxValueBytes/8 {
					return nil, Errorf(TagResourceLimit, "ResourceLimitError: Memory usage limit exceeded (list of %d items)", len(ll)+len(rl))
				}
				out := make([]any, 0, len(ll)+len(rl))
				out = append(out, ll...)
				return append(out, rl...), nil
			}
		}
	}
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	if lInt && rInt {
		switch op {
		case "+":
			s := li + ri
			if (s > li) != (ri > 0) {
				return nil, Errorf(TagValue, "integer overflow")
			}
			return s, nil
		case "-":
			s := li - ri
			if (s < li) != (ri > 0) {
				return nil, Errorf(TagValue, "integer overflow")
			}
			return s, nil
		case "*":
			if li != 0 && ri != 0 {
				p := li * ri
				if p/ri != li || (li == -1 && ri == math.MinInt64) || (ri == -1 && li == math.MinInt64) {
					return nil, Errorf(TagValue, "integer overflow")
				}
				return p, nil
			}
			return int64(0), nil
		case "/":
			if ri == 0 {
				return nil, Errorf(TagZeroDivision, "division by zero")
			}
			return float64(li) / float64(ri), nil
		case "//":
			if ri == 0 {
				return nil, Errorf(TagZeroDivision, "division by zero")
			}
			q := li / ri
			if (li%ri != 0) && ((li < 0) != (ri < 0)) {
				q--
			}
			return q, nil
		case "%":
			if ri == 0 {
				return nil, Errorf(TagZeroDivision, "division by zero")
			}
			m := li % ri
			if m != 0 && ((m < 0) != (ri < 0)) {
				m += ri
			}
			return m, nil
		}
	}
	lf, lok := toFloat(l)
	rf, rok := toFloat(r)
	if lok && rok {
		switch op {
		case "+":
			return lf + rf, nil
		case "-":
			return lf - rf, nil
		case "*":
			return lf * rf, nil
		case "/":
			if rf == 0 {
				return nil, Errorf(TagZeroDivision, "division by zero")
			}
			return lf / rf, nil
		case "//":
			if rf == 0 {
				return nil, Errorf(TagZeroDivision, "division by zero")
			}
			return math.Floor(lf / rf), nil
		case "%":
			if rf == 0 {
				return nil, Errorf(TagZeroDivision, "division by zero")
			}
			m := math.Mod(lf, rf)
			if m != 0 && ((m < 0) != (rf < 0)) {
				m += rf
			}
			return m, nil
		}
	}
	return nil, Errorf(TagType, "unsupported operand types for %s: %s and %s", op, TypeName(l), TypeName(r))
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func compare(l, r any) (int, error) {
	if lf, ok := toFloat(l); ok {
		if rf, ok := toFloat(r); ok {
			li, lInt := l.(int64)
			ri, rInt := r.(int64)
			if lInt && rInt {
				lf, rf = float64(0), float64(0)
				switch {
				case li < ri:
					return -1, nil
				case li > ri:
					return 1, nil
				}
				return 0, nil
			}
			switch {
			case lf < rf:
				return -1, nil
			case lf > rf:
				return 1, nil
			}
			return 0, nil
		}
	}
	if ls, ok := l.(string); ok {
		if rs, ok := r.(string); ok {
			return strings.Compare(ls, rs), nil
		}
	}
	return 0, Errorf(TagType, "cannot compare %s and %s", TypeName(l), TypeName(r))
}

func contains(coll, x any) (bool, error) {
	switch c := coll.(type) {
	case []any:
		for _, e := range c {
			if Equal(e, x) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		k, ok := x.(string)
		if !ok {
			return false, nil
		}
		_, found := c[k]
		return found, nil
	}
	return false, Errorf(TagType, "'in' needs a list or map, got %s", TypeName(coll))
}

// Len counts runes for strings, as Google's len does.
func Len(v any) (int64, error) {
	switch x := v.(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case Bytes:
		return int64(len(x)), nil
	case []any:
		return int64(len(x)), nil
	case map[string]any:
		return int64(len(x)), nil
	}
	return 0, Errorf(TagType, "len: unsupported type %s", TypeName(v))
}
