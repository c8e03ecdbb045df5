/* ui/progress: plain format, quiet mode, thread safety, TTY redraw.
 *
 * With --demo it instead runs a short concurrent deployment-like demo on the
 * real stderr (used by tests/integration/test_progress_tty.py under tmux). */
#include "ui/progress.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "gm_test.h"

/* ---- helpers ------------------------------------------------------------- */

typedef struct capture {
    char *data;
    size_t len;
    FILE *f;
    gm_term term;
} capture;

static void capture_open(capture *c, bool tty, bool color)
{
    memset(c, 0, sizeof(*c));
    c->f = open_memstream(&c->data, &c->len);
    c->term.out = c->f;
    c->term.tty = tty;
    c->term.color = color;
}

/* Closes the stream; c->data holds everything written (free it). */
static void capture_close(capture *c)
{
    fclose(c->f);
    c->f = NULL;
}

static int64_t fake_clock_ms;

static int64_t fake_now(void *ctx)
{
    (void)ctx;
    return fake_clock_ms;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}

static bool starts_ends(const char *s, const char *prefix, const char *suffix)
{
    size_t n = strlen(s), pn = strlen(prefix), sn = strlen(suffix);
    return n >= pn + sn && strncmp(s, prefix, pn) == 0 && strcmp(s + n - sn, suffix) == 0;
}

static bool has_spinner_frame(const char *s)
{
    static const char *const frames[] = {
        "⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏",
    };
    for (size_t i = 0; i < sizeof(frames) / sizeof(frames[0]); i++) {
        if (strstr(s, frames[i]))
            return true;
    }
    return false;
}

/* A tiny terminal: enough of VT100 to replay what the TTY mode writes (text,
 * \r, \n, CSI n A, CSI J, CSI 2K, CSI ?25l/h, SGR) onto an unbounded screen.
 * Text is only ever appended at the end of a line, which the display relies on
 * (it erases before it writes); anything else counts as an error. */
#define VT_ROWS 4096
#define VT_COLS 2048

typedef struct vt {
    char *rows[VT_ROWS];
    int nrows; /* rows in use */
    int row;
    int col; /* in code points */
    bool cursor_visible;
    int max_up; /* largest cursor-up seen */
    int errors;
} vt;

static void vt_init(vt *v)
{
    memset(v, 0, sizeof(*v));
    v->cursor_visible = true;
    v->nrows = 1;
    v->rows[0] = calloc(1, VT_COLS);
}

static void vt_release(vt *v)
{
    for (int i = 0; i < VT_ROWS; i++)
        free(v->rows[i]);
}

static int cps(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void vt_feed(vt *v, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\033') {
            if (i + 1 >= len || s[i + 1] != '[') {
                v->errors++;
                i++;
                continue;
            }
            size_t j = i + 2;
            bool priv = j < len && s[j] == '?';
            if (priv)
                j++;
            int n = 0;
            bool has_n = false;
            while (j < len && ((s[j] >= '0' && s[j] <= '9') || s[j] == ';')) {
                if (s[j] != ';')
                    n = n * 10 + (s[j] - '0'), has_n = true;
                j++;
            }
            if (j >= len) {
                v->errors++;
                return;
            }
            char fin = s[j];
            if (priv && n == 25 && fin == 'l') {
                v->cursor_visible = false;
            } else if (priv && n == 25 && fin == 'h') {
                v->cursor_visible = true;
            } else if (fin == 'A') {
                int up = has_n ? n : 1;
                if (up > v->max_up)
                    v->max_up = up;
                if (up > v->row)
                    v->errors++; /* above the top: the block was miscounted */
                v->row = up > v->row ? 0 : v->row - up;
            } else if (fin == 'J') {
                int k = cps(v->rows[v->row]);
                if (v->col < k) { /* cut the row at col */
                    char *r = v->rows[v->row];
                    int cp = 0;
                    for (char *p = r; *p; p++) {
                        if (((unsigned char)*p & 0xc0) != 0x80 && cp++ == v->col) {
                            *p = '\0';
                            break;
                        }
                    }
                }
                for (int r = v->row + 1; r < v->nrows; r++)
                    v->rows[r][0] = '\0';
                v->nrows = v->row + 1;
            } else if (fin == 'K') {
                v->rows[v->row][0] = '\0';
            } else if (fin == 'm') {
                /* colour: ignored */
            } else {
                v->errors++;
            }
            i = j + 1;
            continue;
        }
        if (c == '\r') {
            v->col = 0;
            i++;
            continue;
        }
        if (c == '\n') {
            v->row++;
            v->col = 0;
            if (v->row >= VT_ROWS) {
                v->errors++;
                return;
            }
            if (!v->rows[v->row])
                v->rows[v->row] = calloc(1, VT_COLS);
            if (v->row >= v->nrows) {
                v->rows[v->row][0] = '\0';
                v->nrows = v->row + 1;
            }
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            v->errors++;
            i++;
            continue;
        }
        char *r = v->rows[v->row];
        size_t rl = strlen(r);
        if (cps(r) != v->col || rl + 1 >= VT_COLS) {
            v->errors++; /* writing over old text */
            i++;
            continue;
        }
        r[rl] = (char)c;
        r[rl + 1] = '\0';
        if ((c & 0xc0) != 0x80)
            v->col++;
        i++;
    }
}

/* ---- tests --------------------------------------------------------------- */

static void test_format_elapsed(void)
{
    char b[32];
    CHECK_STR(gm_progress_format_elapsed(0, b, sizeof(b)), "0.0s");
    CHECK_STR(gm_progress_format_elapsed(-5, b, sizeof(b)), "0.0s");
    CHECK_STR(gm_progress_format_elapsed(49, b, sizeof(b)), "0.0s");
    CHECK_STR(gm_progress_format_elapsed(800, b, sizeof(b)), "0.8s");
    CHECK_STR(gm_progress_format_elapsed(12345, b, sizeof(b)), "12.3s");
    CHECK_STR(gm_progress_format_elapsed(59949, b, sizeof(b)), "59.9s");
    CHECK_STR(gm_progress_format_elapsed(59950, b, sizeof(b)), "1m00s");
    CHECK_STR(gm_progress_format_elapsed(62000, b, sizeof(b)), "1m02s");
    CHECK_STR(gm_progress_format_elapsed(3599499, b, sizeof(b)), "59m59s");
    CHECK_STR(gm_progress_format_elapsed(3599500, b, sizeof(b)), "1h00m00s");
    CHECK_STR(gm_progress_format_elapsed(3723000, b, sizeof(b)), "1h02m03s");
}

static void test_plain_format(void)
{
    capture c;
    capture_open(&c, false, true); /* colour flag without a TTY: still plain */
    gm_progress *p = gm_progress_new(&c.term, true, "Deploying \"demo\"");
    CHECK(p != NULL);
    fake_clock_ms = 0;
    gm_progress_set_clock(p, fake_now, NULL);
    fake_clock_ms = 400;
    gm_progress_start(p, "vpc", "creating VPC");
    fake_clock_ms = 900;
    gm_progress_detail(p, "vpc", "vpc-0abc");
    fake_clock_ms = 1200;
    gm_progress_done(p, "vpc", NULL);
    fake_clock_ms = 1300;
    gm_progress_start(p, "instance", "launching instance");
    fake_clock_ms = 3000;
    gm_progress_fail(p, "instance", "InsufficientInstanceCapacity: no capacity\nin us-east-1a");
    gm_progress_skip(p, "alb", "tier dev has no ALB");
    fake_clock_ms = 3100;
    gm_progress_note(p, "attempt %d: %s", 2, "trying us-east-1b");
    fake_clock_ms = 3200;
    gm_progress_start(p, "efs", NULL);
    fake_clock_ms = 65200;
    gm_progress_done(p, "sg", "sg-1");        /* unknown key */
    gm_progress_done(p, "vpc", "vpc-other");  /* ended already: ignored */
    gm_progress_fail(p, "vpc", "late");       /* ignored */
    gm_progress_detail(p, "vpc", "vpc-late"); /* ended: stored, not printed */

    int running, done, failed, skipped;
    gm_progress_counts(p, &running, &done, &failed, &skipped);
    CHECK_INT(running, 1);
    CHECK_INT(done, 2);
    CHECK_INT(failed, 1);
    CHECK_INT(skipped, 1);

    fake_clock_ms = 66000;
    gm_progress_free(p);
    capture_close(&c);
    CHECK_STR(c.data, "[  0.0s] begin  Deploying \"demo\"\n"
                      "[  0.4s] start  vpc: creating VPC\n"
                      "[  0.9s] detail vpc: vpc-0abc\n"
                      "[  1.2s] done   vpc: vpc-0abc (0.8s)\n"
                      "[  1.3s] start  instance: launching instance\n"
                      "[  3.0s] FAILED instance: InsufficientInstanceCapacity: no capacity in "
                      "us-east-1a\n"
                      "[  3.0s] skip   alb: tier dev has no ALB\n"
                      "[  3.1s] note: attempt 2: trying us-east-1b\n"
                      "[  3.2s] start  efs\n"
                      "[ 65.2s] done   sg: sg-1 (0.0s)\n"
                      "[ 66.0s] halted efs (1m03s)\n"
                      "[ 66.0s] end    2 done, 1 failed, 1 skipped, 1 halted (1m06s)\n");
    free(c.data);
}

static void test_plain_retry_and_edges(void)
{
    capture c;
    capture_open(&c, false, false);
    gm_progress *p = gm_progress_new(&c.term, true, NULL);
    fake_clock_ms = 1000;
    gm_progress_set_clock(p, fake_now, NULL);
    gm_progress_start(p, "instance", "launching");
    fake_clock_ms = 1500;
    gm_progress_fail(p, "instance", NULL);
    fake_clock_ms = 2000;
    gm_progress_start(p, "instance", NULL); /* retry keeps the label */
    gm_progress_detail(p, "instance", "i-1\033[2J\r\x7f\xc2\x9b\xff");
    fake_clock_ms = 2500;
    gm_progress_done(p, "instance", NULL);
    gm_progress_skip(p, "alb", NULL);
    gm_progress_detail(p, "new", NULL); /* unknown key: a running step */
    gm_progress_done(p, "new", NULL);
    gm_progress_start(p, NULL, NULL); /* NULL key tolerated */
    gm_progress_done(p, NULL, NULL);
    gm_progress_note(p, "%s", "");
    gm_progress_free(p);
    capture_close(&c);
    CHECK_STR(c.data, "[  0.0s] start  instance: launching\n"
                      "[  0.5s] FAILED instance\n"
                      "[  1.0s] start  instance: launching\n"
                      "[  1.0s] detail instance: i-1 [2J   ?\n"
                      "[  1.5s] done   instance: i-1 [2J   ? (0.5s)\n"
                      "[  1.5s] skip   alb\n"
                      "[  1.5s] detail new\n"
                      "[  1.5s] done   new (0.0s)\n"
                      "[  1.5s] start  \n"
                      "[  1.5s] done    (0.0s)\n"
                      "[  1.5s] note: \n"
                      "[  1.5s] end    3 done, 0 failed, 1 skipped, 0 halted (1.5s)\n");
    free(c.data);
}

static void test_text_limit(void)
{
    capture c;
    capture_open(&c, false, false);
    gm_progress *p = gm_progress_new(&c.term, true, NULL);
    size_t n = GM_PROGRESS_TEXT_MAX * 3;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i += 3)
        memcpy(big + i, "\xe2\x9c\x93", 3); /* ✓, so a cut could split it */
    big[n] = '\0';
    gm_progress_fail(p, "x", big);
    gm_progress_note(p, "%s", big);
    gm_progress_free(p);
    capture_close(&c);
    char *line = strstr(c.data, "FAILED x: ");
    CHECK(line != NULL);
    if (line) {
        char *msg = line + strlen("FAILED x: ");
        size_t len = strcspn(msg, "\n");
        CHECK(len <= GM_PROGRESS_TEXT_MAX);
        CHECK_INT(len % 3, 0);
    }
    line = strstr(c.data, "note: ");
    CHECK(line != NULL);
    if (line)
        CHECK_INT(strcspn(line + 6, "\n") % 3, 0);
    free(big);
    free(c.data);
}

static void test_quiet(void)
{
    capture c;
    capture_open(&c, true, true);
    gm_progress *p = gm_progress_new(&c.term, false, "title");
    CHECK(p != NULL);
    gm_progress_start(p, "a", "A");
    gm_progress_detail(p, "a", "id");
    gm_progress_done(p, "a", NULL);
    gm_progress_fail(p, "b", "boom");
    gm_progress_skip(p, "c", NULL);
    gm_progress_note(p, "note %d", 1);
    gm_progress_set_clock(p, fake_now, NULL);
    int running = -1, done = -1;
    gm_progress_counts(p, &running, &done, NULL, NULL);
    CHECK_INT(running, 0);
    CHECK_INT(done, 0);
    gm_progress_free(p);

    p = gm_progress_new(NULL, true, "no terminal"); /* quiet too */
    gm_progress_start(p, "a", NULL);
    gm_progress_free(p);
    capture_close(&c);
    CHECK_INT(c.len, 0);
    free(c.data);
}

static void test_null(void)
{
    gm_progress_start(NULL, "a", "b");
    gm_progress_detail(NULL, "a", "b");
    gm_progress_done(NULL, "a", "b");
    gm_progress_fail(NULL, "a", "b");
    gm_progress_skip(NULL, "a", "b");
    gm_progress_note(NULL, "x");
    gm_progress_set_clock(NULL, fake_now, NULL);
    gm_progress_counts(NULL, NULL, NULL, NULL, NULL);
    gm_progress_free(NULL);
    CHECK(1);
}

typedef struct worker {
    gm_progress *p;
    int id;
    int steps;
    int sleep_us_every; /* 0: never sleep */
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->steps; i++) {
        char key[32], label[64], id[32];
        snprintf(key, sizeof(key), "t%d_s%d", w->id, i);
        snprintf(label, sizeof(label), "creating thing %d of worker %d", i, w->id);
        snprintf(id, sizeof(id), "res-%d-%d", w->id, i);
        gm_progress_start(w->p, key, label);
        if (w->sleep_us_every && i % w->sleep_us_every == 0)
            gm_sleep_ms(1);
        gm_progress_detail(w->p, key, id);
        if (i % 10 == 3)
            gm_progress_note(w->p, "worker %d passed step %d", w->id, i);
        gm_progress_done(w->p, key, NULL);
    }
    return NULL;
}

#define NTHREADS 8
#define NSTEPS 40

static void run_workers(gm_progress *p, int sleep_every)
{
    pthread_t th[NTHREADS];
    worker w[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (worker){.p = p, .id = i, .steps = NSTEPS, .sleep_us_every = sleep_every};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
}

static void test_plain_threads(void)
{
    capture c;
    capture_open(&c, false, false);
    gm_progress *p = gm_progress_new(&c.term, true, "threads");
    run_workers(p, 0);
    gm_progress_free(p);
    capture_close(&c);

    int starts = 0, details = 0, dones = 0, notes = 0, other = 0, bad = 0;
    char *save = NULL;
    for (char *line = strtok_r(c.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        double t;
        char kw[16];
        int w, s, w2, s2, consumed = 0;
        if (strlen(line) < 10 || line[0] != '[' || line[6] != 's' || line[7] != ']' ||
            line[8] != ' ' || sscanf(line, "[%lfs]", &t) != 1) {
            bad++;
            continue;
        }
        const char *rest = line + 9;
        if (sscanf(rest, "start  t%d_s%d: creating thing %d of worker %d%n", &w, &s, &s2, &w2,
                   &consumed) == 4 &&
            !rest[consumed] && w == w2 && s == s2)
            starts++;
        else if (sscanf(rest, "detail t%d_s%d: res-%d-%d%n", &w, &s, &w2, &s2, &consumed) == 4 &&
                 !rest[consumed] && w == w2 && s == s2)
            details++;
        else if (sscanf(rest, "done   t%d_s%d: res-%d-%d (%15[0-9.s])%n", &w, &s, &w2, &s2, kw,
                        &consumed) == 5 &&
                 !rest[consumed] && w == w2 && s == s2)
            dones++;
        else if (sscanf(rest, "note: worker %d passed step %d%n", &w, &s, &consumed) == 2 &&
                 !rest[consumed])
            notes++;
        else if (strncmp(rest, "begin  threads", 14) == 0 || strncmp(rest, "end    ", 7) == 0)
            other++;
        else {
            fprintf(stderr, "bad line: %s\n", line);
            bad++;
        }
    }
    CHECK_INT(bad, 0);
    CHECK_INT(starts, NTHREADS * NSTEPS);
    CHECK_INT(details, NTHREADS * NSTEPS);
    CHECK_INT(dones, NTHREADS * NSTEPS);
    CHECK_INT(notes, NTHREADS * (NSTEPS / 10));
    CHECK_INT(other, 2);
    free(c.data);
}

/* Replays c.data on the emulator and checks the final screen: every step's
 * final line exactly once, no live line left, cursor visible. */
static void check_tty_screen(const char *data, size_t len, int expect_done, int max_block)
{
    vt v;
    vt_init(&v);
    CHECK(strncmp(data, "\033[?25l", 6) == 0);
    vt_feed(&v, data, len);
    CHECK_INT(v.errors, 0);
    CHECK(v.cursor_visible);
    CHECK(v.max_up <= max_block);
    int done = 0;
    for (int r = 0; r < v.nrows; r++) {
        const char *row = v.rows[r];
        if (has_spinner_frame(row) || strstr(row, "… and")) {
            fprintf(stderr, "left on screen: %s\n", row);
            CHECK(!"live line left on screen");
        }
        if (strncmp(row, "✓ ", strlen("✓ ")) == 0) {
            done++;
            for (int q = 0; q < r; q++)
                if (strcmp(v.rows[q], row) == 0)
                    CHECK(!"duplicate line");
        }
    }
    CHECK_INT(done, expect_done);
    vt_release(&v);
}

static void test_tty_single(void)
{
    capture c;
    capture_open(&c, true, false);
    gm_progress *p = gm_progress_new(&c.term, true, "Deploying demo");
    gm_progress_start(p, "vpc", "creating VPC");
    gm_progress_start(p, "efs", "creating file system");
    gm_progress_detail(p, "efs", "fs-123");
    gm_sleep_ms(350); /* a few ticks */
    gm_progress_done(p, "vpc", "vpc-0abc");
    gm_progress_note(p, "attempt 2: InsufficientInstanceCapacity, trying %s", "us-east-1b");
    gm_progress_fail(p, "instance", "no capacity");
    gm_progress_skip(p, "alb", "tier dev");
    gm_progress_done(p, "efs", NULL);
    gm_progress_start(p, "health", "waiting for health");
    gm_progress_free(p); /* health is halted */
    capture_close(&c);

    CHECK(strstr(c.data, "⠋ creating VPC") != NULL);
    CHECK(strstr(c.data, "⠙") != NULL || strstr(c.data, "⠹") != NULL); /* the ticker ran */
    CHECK(strstr(c.data, "\033[0m") == NULL);                          /* no colour */
    size_t n = strlen(c.data);
    CHECK(n >= 6 && strcmp(c.data + n - 6, "\033[?25h") == 0);
    check_tty_screen(c.data, c.len, 2, 3);

    vt v;
    vt_init(&v);
    vt_feed(&v, c.data, c.len);
    CHECK(v.nrows >= 9);
    if (v.nrows >= 9) {
        CHECK_STR(v.rows[0], "Deploying demo");
        CHECK(starts_ends(v.rows[1], "✓ creating VPC  vpc-0abc  ", "s"));
        CHECK_STR(v.rows[2], "• attempt 2: InsufficientInstanceCapacity, trying us-east-1b");
        CHECK(starts_ends(v.rows[3], "✗ instance  no capacity  ", "s"));
        CHECK_STR(v.rows[4], "- alb  tier dev  skipped");
        CHECK(starts_ends(v.rows[5], "✓ creating file system  fs-123  ", "s"));
        CHECK(starts_ends(v.rows[6], "! waiting for health  halted  ", "s"));
        CHECK(starts_ends(v.rows[7], "2 done, 1 failed, 1 skipped, 1 halted  ", "s"));
        CHECK_STR(v.rows[8], "");
    }
    vt_release(&v);
    free(c.data);
}

static void test_tty_colour(void)
{
    capture c;
    capture_open(&c, true, true);
    gm_progress *p = gm_progress_new(&c.term, true, NULL);
    gm_progress_done(p, "a", "id-1");
    gm_progress_fail(p, "b", "bad");
    gm_progress_free(p);
    capture_close(&c);
    CHECK(strstr(c.data, "\033[32m✓\033[0m a  id-1") != NULL);
    CHECK(strstr(c.data, "\033[31m✗\033[0m b  \033[31mbad\033[0m") != NULL);
    CHECK_INT(count_substr(c.data, "\033[?25l"), 1);
    CHECK_INT(count_substr(c.data, "\033[?25h"), 1);
    free(c.data);
}

static void test_tty_narrow_and_tall(void)
{
    /* 30 columns, 10 rows: live lines cut, block capped at 8 lines. */
    setenv("COLUMNS", "30", 1);
    setenv("LINES", "10", 1);
    capture c;
    capture_open(&c, true, false);
    gm_progress *p = gm_progress_new(&c.term, true, NULL);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        char id[64];
        snprintf(id, sizeof(id), "resource-%02d-0123456789abcdef", i);
        gm_progress_start(p, key, "a rather long label that cannot fit on one line");
        gm_progress_detail(p, key, id);
    }
    /* Snapshot between two frames: the ticker writes each frame in one fwrite
     * under the stream's lock. */
    flockfile(c.f);
    fflush(c.f);
    char *snap = malloc(c.len + 1);
    size_t snap_len = c.len;
    memcpy(snap, c.data, c.len + 1);
    funlockfile(c.f);
    vt v;
    vt_init(&v);
    vt_feed(&v, snap, snap_len);
    free(snap);
    CHECK_INT(v.errors, 0);
    int live = 0;
    for (int r = 0; r < v.nrows; r++) {
        if (!v.rows[r][0])
            continue;
        live++;
        CHECK(cps(v.rows[r]) <= 29);
    }
    CHECK_INT(live, 8);
    CHECK(strstr(v.rows[7], "… and 13 more") != NULL);
    vt_release(&v);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%02d", i);
        gm_progress_done(p, key, NULL);
    }
    gm_progress_free(p);
    capture_close(&c);
    check_tty_screen(c.data, c.len, 20, 8);
    unsetenv("COLUMNS");
    unsetenv("LINES");
    free(c.data);
}

static void test_tty_threads(void)
{
    capture c;
    capture_open(&c, true, true);
    gm_progress *p = gm_progress_new(&c.term, true, "threads");
    run_workers(p, 3); /* sleeps let the ticker interleave */
    gm_progress_free(p);
    capture_close(&c);
    check_tty_screen(c.data, c.len, NTHREADS * NSTEPS, 22);
    free(c.data);
}

/* ---- demo ---------------------------------------------------------------- */

typedef struct demo_step {
    const char *key;
    const char *label;
    const char *id;
    int ms;
} demo_step;

typedef struct demo_lane {
    gm_progress *p;
    const demo_step *steps;
    size_t n;
} demo_lane;

static void *demo_lane_main(void *arg)
{
    demo_lane *l = arg;
    for (size_t i = 0; i < l->n; i++) {
        const demo_step *s = &l->steps[i];
        gm_progress_start(l->p, s->key, s->label);
        gm_sleep_ms(s->ms / 2);
        gm_progress_detail(l->p, s->key, s->id);
        gm_sleep_ms(s->ms / 2);
        gm_progress_done(l->p, s->key, NULL);
    }
    return NULL;
}

static int run_demo(void)
{
    static const demo_step network[] = {
        {"vpc", "creating VPC", "vpc-0abc1234", 300},
        {"subnet_a", "creating subnet in us-east-1a", "subnet-0aaa", 250},
        {"subnet_b", "creating subnet in us-east-1b", "subnet-0bbb", 250},
        {"igw", "attaching internet gateway", "igw-0123", 200},
        {"sg", "creating security group", "sg-0456", 200},
    };
    static const demo_step storage[] = {
        {"efs", "creating EFS file system", "fs-0789", 500},
        {"efs_mt_a", "creating mount target (us-east-1a)", "fsmt-0a", 300},
        {"efs_mt_b", "creating mount target (us-east-1b)", "fsmt-0b", 300},
    };
    static const demo_step identity[] = {
        {"iam_role", "creating instance role", "geusemaker-demo-role", 400},
        {"iam_profile", "creating instance profile", "geusemaker-demo-profile", 300},
    };
    gm_term t;
    gm_term_init(&t, stderr, false);
    gm_progress *p = gm_progress_new(&t, true, "Deploying \"demo\" (tier dev)");
    demo_lane lanes[] = {
        {p, network, sizeof(network) / sizeof(network[0])},
        {p, storage, sizeof(storage) / sizeof(storage[0])},
        {p, identity, sizeof(identity) / sizeof(identity[0])},
    };
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, demo_lane_main, &lanes[i]);
    gm_progress_skip(p, "alb", "tier dev has no load balancer");
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    gm_progress_start(p, "instance", "launching spot instance g4dn.xlarge");
    gm_sleep_ms(300);
    gm_progress_fail(p, "instance", "InsufficientInstanceCapacity in us-east-1a");
    gm_progress_note(p, "attempt 2: InsufficientInstanceCapacity in us-east-1a, trying us-east-1b");
    gm_progress_start(p, "instance", "launching spot instance g4dn.xlarge (us-east-1b)");
    gm_sleep_ms(300);
    gm_progress_detail(p, "instance", "i-0fedcba987654321");
    gm_sleep_ms(300);
    gm_progress_done(p, "instance", NULL);
    gm_progress_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--demo") == 0)
        return run_demo();
    unsetenv("COLUMNS");
    unsetenv("LINES");
    GM_RUN(test_format_elapsed);
    GM_RUN(test_plain_format);
    GM_RUN(test_plain_retry_and_edges);
    GM_RUN(test_text_limit);
    GM_RUN(test_quiet);
    GM_RUN(test_null);
    GM_RUN(test_plain_threads);
    GM_RUN(test_tty_single);
    GM_RUN(test_tty_colour);
    GM_RUN(test_tty_narrow_and_tall);
    GM_RUN(test_tty_threads);
    GM_TEST_END();
}
