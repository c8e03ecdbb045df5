#include "ui/progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "core/buf.h"
#include "core/timeutil.h"

#define TICK_MS 100
#define FRAME_MAX (1024u * 1024u) /* one redraw of the TTY display */
#define DEFAULT_COLS 80
#define DEFAULT_ROWS 24

/* ANSI sequences. */
#define CSI "\033["
#define HIDE_CURSOR CSI "?25l"
#define SHOW_CURSOR CSI "?25h"
#define ERASE_DOWN CSI "J"

#define SGR_BOLD "1"
#define SGR_DIM "2"
#define SGR_RED "31"
#define SGR_GREEN "32"
#define SGR_YELLOW "33"
#define SGR_CYAN "36"

static const char *const spinner_frames[] = {
    "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏",
};
#define SPINNER_COUNT (sizeof(spinner_frames) / sizeof(spinner_frames[0]))

typedef enum step_state {
    STEP_RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_SKIPPED,
    STEP_HALTED, /* still running when the display was freed */
} step_state;

typedef struct step {
    char *key;
    char *label;   /* NULL: show the key */
    char *detail;  /* resource id */
    char *message; /* failure message or skip reason */
    step_state state;
    int64_t start_ms;
    int64_t end_ms;
    uint64_t order; /* start order, for the live block */
} step;

struct gm_progress {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t ticker;
    bool ticker_started;
    bool stop;

    FILE *out;
    bool quiet;
    bool tty;
    bool color;
    int env_cols; /* $COLUMNS / $LINES at creation, for streams without a size */
    int env_rows;

    int64_t (*now_fn)(void *ctx);
    void *now_ctx;
    int64_t t0;

    step *steps;
    size_t nsteps;
    size_t cap;
    uint64_t next_order;

    bool had_title;
    int drawn; /* lines of the live block now on screen (TTY) */
    unsigned frame;
};

/* ---- text ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    size_t n;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    }
    if (n == 3 && c == 0xe0 && s[1] < 0xa0)
        return 0; /* overlong */
    if (n == 3 && c == 0xed && s[1] >= 0xa0)
        return 0; /* surrogate */
    if (n == 4 && c == 0xf0 && s[1] < 0x90)
        return 0; /* overlong */
    if (n == 4 && c == 0xf4 && s[1] >= 0x90)
        return 0; /* above U+10FFFF */
    return n;
}

/* A copy of s, valid UTF-8, without control characters (C0, DEL and C1 become
 * spaces, invalid bytes '?'), at most GM_PROGRESS_TEXT_MAX bytes. NULL in, NULL
 * out; NULL also when memory is exhausted. */
static char *clean_dup(const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *out = malloc((len < GM_PROGRESS_TEXT_MAX ? len : GM_PROGRESS_TEXT_MAX) + 1);
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = utf8_seq_len(u + i, len - i);
        size_t need = n ? n : 1;
        if (o + need > GM_PROGRESS_TEXT_MAX)
            break;
        if (n == 0) {
            out[o++] = '?';
            i++;
        } else if (n == 1) {
            out[o++] = (u[i] < 0x20 || u[i] == 0x7f) ? ' ' : (char)u[i];
            i++;
        } else if (n == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) {
            out[o++] = ' '; /* C1 control, U+0080..U+009F */
            i += 2;
        } else {
            memcpy(out + o, u + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    return out;
}

/* Cuts a code point that a truncation split at the end of s. */
static void drop_partial_utf8(char *s)
{
    size_t len = strlen(s);
    for (size_t back = 1; back <= 4 && back <= len; back++) {
        unsigned char c = (unsigned char)s[len - back];
        if ((c & 0xc0) == 0x80)
            continue; /* continuation byte: keep looking for the lead */
        size_t need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        if (need > back)
            s[len - back] = '\0';
        return;
    }
}

/* Replaces *dst with a cleaned copy of src. Keeps *dst when memory is
 * exhausted. */
static void set_text(char **dst, const char *src)
{
    char *copy = clean_dup(src);
    if (src && !copy)
        return;
    free(*dst);
    *dst = copy;
}

/* Display columns of s (one per code point; text is clean UTF-8). */
static size_t text_cols(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    }
    return n;
}

/* Building a frame: a frame that does not fit its buffer is cut short, and
 * nothing depends on it, so these drop the buffer's status on purpose. */
static void put(gm_buf *b, const char *s)
{
    gm_ignore(gm_buf_appends(b, s));
}

static void put_n(gm_buf *b, const char *s, size_t n)
{
    gm_ignore(gm_buf_append(b, s, n));
}

static void put_c(gm_buf *b, char c)
{
    gm_ignore(gm_buf_appendc(b, c));
}

static void put_f(gm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_f(gm_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gm_ignore(gm_buf_vprintf(b, fmt, ap));
    va_end(ap);
}

/* Appends s cut to at most cols columns, the last one "…" when cut. */
static void append_fit(gm_buf *b, const char *s, size_t cols)
{
    if (cols == 0)
        return;
    if (text_cols(s) <= cols) {
        put(b, s);
        return;
    }
    size_t keep = cols - 1, n = 0;
    const char *p = s;
    while (*p) {
        if (((unsigned char)*p & 0xc0) != 0x80) {
            if (n == keep)
                break;
            n++;
        }
        p++;
    }
    put_n(b, s, (size_t)(p - s));
    put(b, "…");
}

const char *gm_progress_format_elapsed(int64_t ms, char *out, size_t size)
{
    if (ms < 0)
        ms = 0;
    int64_t tenths = (ms + 50) / 100;
    if (tenths < 600) {
        snprintf(out, size, "%d.%ds", (int)(tenths / 10), (int)(tenths % 10));
        return out;
    }
    int64_t secs = (ms + 500) / 1000;
    if (secs < 3600) {
        snprintf(out, size, "%dm%02ds", (int)(secs / 60), (int)(secs % 60));
        return out;
    }
    snprintf(out, size, "%lldh%02dm%02ds", (long long)(secs / 3600), (int)(secs / 60 % 60),
             (int)(secs % 60));
    return out;
}

/* ---- styling ------------------------------------------------------------- */

static void style_on(gm_progress *p, gm_buf *b, const char *sgr)
{
    if (p->color)
        put_f(b, CSI "%sm", sgr);
}

static void style_off(gm_progress *p, gm_buf *b)
{
    if (p->color)
        put(b, CSI "0m");
}

static void append_styled(gm_progress *p, gm_buf *b, const char *sgr, const char *text)
{
    style_on(p, b, sgr);
    put(b, text);
    style_off(p, b);
}

/* ---- steps --------------------------------------------------------------- */

static int64_t now_ms(gm_progress *p)
{
    return p->now_fn ? p->now_fn(p->now_ctx) : gm_now_ms();
}

static step *find_step(gm_progress *p, const char *key)
{
    for (size_t i = 0; i < p->nsteps; i++) {
        if (strcmp(p->steps[i].key, key) == 0)
            return &p->steps[i];
    }
    return NULL;
}

/* The step named key, created running when unknown (*out_created). NULL when
 * memory is exhausted. The pointer is valid until the next add. */
static step *get_step(gm_progress *p, const char *key, int64_t now, bool *out_created)
{
    char *clean_key = clean_dup(key ? key : "");
    if (!clean_key)
        return NULL;
    step *s = find_step(p, clean_key);
    *out_created = s == NULL;
    if (s) {
        free(clean_key);
        return s;
    }
    if (p->nsteps == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        step *grown = realloc(p->steps, cap * sizeof(*grown));
        if (!grown) {
            free(clean_key);
            return NULL;
        }
        p->steps = grown;
        p->cap = cap;
    }
    s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof(*s));
    s->key = clean_key;
    s->state = STEP_RUNNING;
    s->start_ms = now;
    s->order = p->next_order++;
    return s;
}

static const char *step_name(const step *s)
{
    return s->label && *s->label ? s->label : s->key;
}

/* ---- plain mode ---------------------------------------------------------- */

static void plain_prefix(gm_progress *p, gm_buf *b, int64_t now, const char *keyword)
{
    put_f(b, "[%5.1fs] %-6s ", (double)(now - p->t0) / 1000.0, keyword);
}

static void plain_write(gm_progress *p, gm_buf *b)
{
    put_c(b, '\n');
    fwrite(gm_buf_cstr(b), 1, b->len, p->out);
    fflush(p->out);
}

/* "<prefix> key[: text][ (duration)]" */
static void plain_event(gm_progress *p, int64_t now, const char *keyword, const step *s,
                        const char *text, bool with_duration)
{
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    plain_prefix(p, &b, now, keyword);
    put(&b, s->key);
    if (text && *text)
        put_f(&b, ": %s", text);
    if (with_duration) {
        char el[32];
        put_f(&b, " (%s)", gm_progress_format_elapsed(s->end_ms - s->start_ms, el, sizeof(el)));
    }
    plain_write(p, &b);
    gm_buf_release(&b);
}

/* ---- TTY mode ------------------------------------------------------------ */

static void term_size(gm_progress *p, int *out_cols, int *out_rows)
{
    struct winsize ws;
    int fd = fileno(p->out);
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        *out_cols = ws.ws_col;
        *out_rows = ws.ws_row;
        return;
    }
    *out_cols = p->env_cols;
    *out_rows = p->env_rows;
}

/* The line of an ended step, printed once above the live block. */
static void tty_final_line(gm_progress *p, gm_buf *b, const step *s)
{
    char el[32];
    gm_progress_format_elapsed(s->end_ms - s->start_ms, el, sizeof(el));
    switch (s->state) {
    case STEP_DONE:
        append_styled(p, b, SGR_GREEN, "✓");
        put_f(b, " %s", step_name(s));
        if (s->detail && *s->detail)
            put_f(b, "  %s", s->detail);
        break;
    case STEP_FAILED:
        append_styled(p, b, SGR_RED, "✗");
        put_f(b, " %s", step_name(s));
        if (s->message && *s->message) {
            put(b, "  ");
            append_styled(p, b, SGR_RED, s->message);
        }
        break;
    case STEP_SKIPPED:
        style_on(p, b, SGR_DIM);
        put_f(b, "- %s", step_name(s));
        if (s->message && *s->message)
            put_f(b, "  %s", s->message);
        put(b, "  skipped");
        style_off(p, b);
        put_c(b, '\n');
        return;
    case STEP_HALTED:
        append_styled(p, b, SGR_YELLOW, "!");
        put_f(b, " %s", step_name(s));
        if (s->detail && *s->detail)
            put_f(b, "  %s", s->detail);
        put(b, "  ");
        append_styled(p, b, SGR_YELLOW, "halted");
        break;
    case STEP_RUNNING: break;
    }
    put(b, "  ");
    append_styled(p, b, SGR_DIM, el);
    put_c(b, '\n');
}

/* One live line, cut to cols - 1 columns so it never wraps. */
static void tty_live_line(gm_progress *p, gm_buf *b, const step *s, int64_t now, int cols)
{
    char el[32];
    gm_progress_format_elapsed(now - s->start_ms, el, sizeof(el));
    const char *name = step_name(s);
    const char *detail = s->detail && *s->detail ? s->detail : NULL;

    /* "S name  detail  el": 2 for the spinner and its space, 2 before el. */
    long avail = (long)cols - 1 - 2 - 2 - (long)text_cols(el);
    size_t name_w = text_cols(name);
    size_t detail_w = detail ? text_cols(detail) : 0;
    size_t name_fit = name_w, detail_fit = detail_w;
    if (avail < 1) {
        name_fit = 0;
        detail = NULL;
    } else if ((long)(name_w + (detail ? 2 + detail_w : 0)) > avail) {
        if (detail) {
            detail_fit = detail_w < (size_t)avail / 2 ? detail_w : (size_t)avail / 2;
            long rest = avail - 2 - (long)detail_fit;
            name_fit = rest > 0 ? ((size_t)rest < name_w ? (size_t)rest : name_w) : 0;
            rest = avail - 2 - (long)name_fit;
            detail_fit = rest > 0 ? ((size_t)rest < detail_w ? (size_t)rest : detail_w) : 0;
            if (detail_fit == 0)
                detail = NULL;
        } else {
            name_fit = (size_t)avail;
        }
    }

    append_styled(p, b, SGR_CYAN, spinner_frames[p->frame % SPINNER_COUNT]);
    if (avail < 1) {
        put_c(b, '\n');
        return;
    }
    put_c(b, ' ');
    append_fit(b, name, name_fit);
    if (detail) {
        put(b, "  ");
        append_fit(b, detail, detail_fit);
    }
    put(b, "  ");
    append_styled(p, b, SGR_DIM, el);
    put_c(b, '\n');
}

static int cmp_order(const void *a, const void *b)
{
    const step *x = *(const step *const *)a, *y = *(const step *const *)b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Redraws the display: moves up over the live block, erases it, prints text
 * (complete lines; may be NULL) which then scrolls away normally, and draws the
 * running steps again below it. One write per frame. Called with the lock. */
static void tty_redraw(gm_progress *p, const char *text)
{
    int64_t now = now_ms(p);
    int cols, rows;
    term_size(p, &cols, &rows);

    gm_buf b;
    gm_buf_init(&b, FRAME_MAX);
    if (p->drawn > 0)
        put_f(&b, "\r" CSI "%dA", p->drawn);
    else
        put_c(&b, '\r');
    put(&b, ERASE_DOWN);
    if (text)
        put(&b, text);

    size_t nrun = 0;
    for (size_t i = 0; i < p->nsteps; i++)
        nrun += p->steps[i].state == STEP_RUNNING;
    const step **run = NULL;
    if (nrun > 0)
        run = malloc(nrun * sizeof(*run));
    int drawn = 0;
    if (run) {
        size_t k = 0;
        for (size_t i = 0; i < p->nsteps; i++) {
            if (p->steps[i].state == STEP_RUNNING)
                run[k++] = &p->steps[i];
        }
        qsort(run, nrun, sizeof(*run), cmp_order);
        /* Keep the block shorter than the screen, or moving up would fail. */
        size_t max_lines = rows > 3 ? (size_t)rows - 2 : 1;
        size_t shown = nrun <= max_lines ? nrun : max_lines - 1;
        for (size_t i = 0; i < shown; i++)
            tty_live_line(p, &b, run[i], now, cols);
        drawn = (int)shown;
        if (shown < nrun) {
            char more[64];
            snprintf(more, sizeof(more), "  … and %zu more", nrun - shown);
            style_on(p, &b, SGR_DIM);
            append_fit(&b, more, cols > 1 ? (size_t)cols - 1 : 1);
            style_off(p, &b);
            put_c(&b, '\n');
            drawn++;
        }
        free(run);
    }
    fwrite(gm_buf_cstr(&b), 1, b.len, p->out);
    fflush(p->out);
    gm_buf_release(&b);
    p->drawn = drawn;
}

static void tty_redraw_step(gm_progress *p, const step *s)
{
    gm_buf line;
    gm_buf_init(&line, GM_LIMIT_SMALL);
    tty_final_line(p, &line, s);
    tty_redraw(p, gm_buf_cstr(&line));
    gm_buf_release(&line);
}

static void *ticker_main(void *arg)
{
    gm_progress *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_nsec += TICK_MS * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!p->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&p->wake, &p->lock, &deadline);
        if (p->stop)
            break;
        p->frame++;
        bool any = false;
        for (size_t i = 0; i < p->nsteps && !any; i++)
            any = p->steps[i].state == STEP_RUNNING;
        if (any)
            tty_redraw(p, NULL);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* ---- API ----------------------------------------------------------------- */

static int env_int(const char *name, int fallback)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return fallback;
    char *end;
    long n = strtol(v, &end, 10);
    return (*end || n < 1 || n > 10000) ? fallback : (int)n;
}

gm_progress *gm_progress_new(const gm_term *term, bool enabled, const char *title)
{
    gm_progress *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->quiet = !enabled || !term || !term->out;
    if (p->quiet)
        return p; /* never locks, never writes */

    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        goto error;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        goto error;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        goto error;
    }
    p->out = term->out;
    p->tty = term->tty;
    p->color = term->tty && term->color;
    p->env_cols = env_int("COLUMNS", DEFAULT_COLS);
    p->env_rows = env_int("LINES", DEFAULT_ROWS);
    p->t0 = now_ms(p);
    p->had_title = title != NULL;

    char *clean_title = clean_dup(title);
    if (p->tty) {
        gm_buf b;
        gm_buf_init(&b, GM_LIMIT_SMALL);
        put(&b, HIDE_CURSOR);
        if (clean_title) {
            append_styled(p, &b, SGR_BOLD, clean_title);
            put_c(&b, '\n');
        }
        fwrite(gm_buf_cstr(&b), 1, b.len, p->out);
        fflush(p->out);
        gm_buf_release(&b);
        p->ticker_started = pthread_create(&p->ticker, NULL, ticker_main, p) == 0;
    } else if (clean_title) {
        gm_buf b;
        gm_buf_init(&b, GM_LIMIT_SMALL);
        plain_prefix(p, &b, p->t0, "begin");
        put(&b, clean_title);
        plain_write(p, &b);
        gm_buf_release(&b);
    }
    free(clean_title);
    return p;

error:
    free(p);
    return NULL;
}

/* Takes the lock unless p is NULL or quiet (then returns false). */
static bool enter(gm_progress *p)
{
    if (!p || p->quiet)
        return false;
    pthread_mutex_lock(&p->lock);
    return true;
}

static void leave(gm_progress *p)
{
    pthread_mutex_unlock(&p->lock);
}

void gm_progress_start(gm_progress *p, const char *key, const char *label)
{
    if (!enter(p))
        return;
    int64_t now = now_ms(p);
    bool created;
    step *s = get_step(p, key, now, &created);
    if (s) {
        if (!created && s->state != STEP_RUNNING) {
            s->state = STEP_RUNNING; /* a retry */
            s->start_ms = now;
            s->end_ms = 0;
            s->order = p->next_order++;
            set_text(&s->detail, NULL);
            set_text(&s->message, NULL);
        }
        if (label)
            set_text(&s->label, label);
        if (p->tty)
            tty_redraw(p, NULL);
        else
            plain_event(p, now, "start", s, s->label, false);
    }
    leave(p);
}

void gm_progress_detail(gm_progress *p, const char *key, const char *detail)
{
    if (!enter(p))
        return;
    int64_t now = now_ms(p);
    bool created;
    step *s = get_step(p, key, now, &created);
    if (s) {
        set_text(&s->detail, detail);
        if (s->state == STEP_RUNNING) {
            if (p->tty)
                tty_redraw(p, NULL);
            else
                plain_event(p, now, "detail", s, s->detail, false);
        }
    }
    leave(p);
}

/* Ends the step key in state; text (may be NULL) goes to the detail for done
 * and to the message otherwise. */
static void finish(gm_progress *p, const char *key, step_state state, const char *text)
{
    if (!enter(p))
        return;
    int64_t now = now_ms(p);
    bool created;
    step *s = get_step(p, key, now, &created);
    if (s && s->state == STEP_RUNNING) {
        s->state = state;
        s->end_ms = now;
        if (state == STEP_DONE) {
            if (text)
                set_text(&s->detail, text);
        } else {
            set_text(&s->message, text);
        }
        if (p->tty) {
            tty_redraw_step(p, s);
        } else if (state == STEP_DONE) {
            plain_event(p, now, "done", s, s->detail, true);
        } else if (state == STEP_FAILED) {
            plain_event(p, now, "FAILED", s, s->message, false);
        } else {
            plain_event(p, now, "skip", s, s->message, false);
        }
    }
    leave(p);
}

void gm_progress_done(gm_progress *p, const char *key, const char *detail)
{
    finish(p, key, STEP_DONE, detail);
}

void gm_progress_fail(gm_progress *p, const char *key, const char *message)
{
    finish(p, key, STEP_FAILED, message);
}

void gm_progress_skip(gm_progress *p, const char *key, const char *reason)
{
    finish(p, key, STEP_SKIPPED, reason);
}

void gm_progress_note(gm_progress *p, const char *fmt, ...)
{
    if (!p || p->quiet || !fmt)
        return;
    char raw[GM_PROGRESS_TEXT_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(raw))
        drop_partial_utf8(raw);
    char *text = clean_dup(raw);
    if (!text)
        return;
    if (!enter(p)) {
        free(text);
        return;
    }
    gm_buf b;
    gm_buf_init(&b, GM_LIMIT_SMALL);
    if (p->tty) {
        append_styled(p, &b, SGR_CYAN, "•");
        put_f(&b, " %s\n", text);
        tty_redraw(p, gm_buf_cstr(&b));
    } else {
        put_f(&b, "[%5.1fs] note: %s", (double)(now_ms(p) - p->t0) / 1000.0, text);
        plain_write(p, &b);
    }
    gm_buf_release(&b);
    leave(p);
    free(text);
}

void gm_progress_counts(gm_progress *p, int *out_running, int *out_done, int *out_failed,
                        int *out_skipped)
{
    int n[STEP_HALTED + 1] = {0};
    if (enter(p)) {
        for (size_t i = 0; i < p->nsteps; i++)
            n[p->steps[i].state]++;
        leave(p);
    }
    if (out_running)
        *out_running = n[STEP_RUNNING] + n[STEP_HALTED];
    if (out_done)
        *out_done = n[STEP_DONE];
    if (out_failed)
        *out_failed = n[STEP_FAILED];
    if (out_skipped)
        *out_skipped = n[STEP_SKIPPED];
}

void gm_progress_set_clock(gm_progress *p, int64_t (*now_fn)(void *ctx), void *ctx)
{
    if (!enter(p))
        return;
    p->now_fn = now_fn;
    p->now_ctx = ctx;
    p->t0 = now_ms(p);
    leave(p);
}

/* Halts the steps still running and prints them and the summary. */
static void print_final(gm_progress *p)
{
    int64_t now = now_ms(p);
    int n[STEP_HALTED + 1] = {0};
    gm_buf b;
    gm_buf_init(&b, FRAME_MAX);
    for (size_t i = 0; i < p->nsteps; i++) {
        step *s = &p->steps[i];
        if (s->state == STEP_RUNNING) {
            s->state = STEP_HALTED;
            s->end_ms = now;
            if (p->tty) {
                tty_final_line(p, &b, s);
            } else {
                char el[32];
                gm_buf_reset(&b);
                plain_prefix(p, &b, now, "halted");
                put_f(&b, "%s (%s)", s->key,
                      gm_progress_format_elapsed(now - s->start_ms, el, sizeof(el)));
                plain_write(p, &b);
            }
        }
        n[s->state]++;
    }
    if (!p->had_title && p->nsteps == 0) {
        if (p->tty)
            tty_redraw(p, gm_buf_cstr(&b));
        gm_buf_release(&b);
        return;
    }
    char el[32];
    gm_progress_format_elapsed(now - p->t0, el, sizeof(el));
    if (p->tty) {
        style_on(p, &b, SGR_BOLD);
        put_f(&b, "%d done", n[STEP_DONE]);
        style_off(p, &b);
        if (n[STEP_FAILED]) {
            put(&b, ", ");
            style_on(p, &b, SGR_RED);
            put_f(&b, "%d failed", n[STEP_FAILED]);
            style_off(p, &b);
        }
        if (n[STEP_SKIPPED])
            put_f(&b, ", %d skipped", n[STEP_SKIPPED]);
        if (n[STEP_HALTED]) {
            put(&b, ", ");
            style_on(p, &b, SGR_YELLOW);
            put_f(&b, "%d halted", n[STEP_HALTED]);
            style_off(p, &b);
        }
        put(&b, "  ");
        append_styled(p, &b, SGR_DIM, el);
        put_c(&b, '\n');
        tty_redraw(p, gm_buf_cstr(&b));
    } else {
        gm_buf_reset(&b);
        plain_prefix(p, &b, now, "end");
        put_f(&b, "%d done, %d failed, %d skipped, %d halted (%s)", n[STEP_DONE], n[STEP_FAILED],
              n[STEP_SKIPPED], n[STEP_HALTED], el);
        plain_write(p, &b);
    }
    gm_buf_release(&b);
}

void gm_progress_free(gm_progress *p)
{
    if (!p)
        return;
    if (!p->quiet) {
        if (p->ticker_started) {
            pthread_mutex_lock(&p->lock);
            p->stop = true;
            pthread_cond_signal(&p->wake);
            pthread_mutex_unlock(&p->lock);
            pthread_join(p->ticker, NULL);
        }
        pthread_mutex_lock(&p->lock);
        print_final(p);
        if (p->tty) {
            fputs(SHOW_CURSOR, p->out);
            fflush(p->out);
        }
        pthread_mutex_unlock(&p->lock);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
    }
    for (size_t i = 0; i < p->nsteps; i++) {
        free(p->steps[i].key);
        free(p->steps[i].label);
        free(p->steps[i].detail);
        free(p->steps[i].message);
    }
    free(p->steps);
    free(p);
}
