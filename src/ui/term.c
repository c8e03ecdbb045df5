#include "ui/term.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

void gm_term_init(gm_term *t, FILE *stream, bool no_color_flag)
{
    t->out = stream;
    t->tty = isatty(fileno(stream)) == 1;
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    t->color = t->tty && !no_color_flag && !(no_color && *no_color) &&
               !(term && strcmp(term, "dumb") == 0);
}

const char *gm_term_style(const gm_term *t, const char *sgr, const char *text, char *buf,
                          size_t size)
{
    if (!t->color) {
        snprintf(buf, size, "%s", text);
        return buf;
    }
    snprintf(buf, size, "\033[%sm%s\033[0m", sgr, text);
    return buf;
}

int gm_term_width(const gm_term *t)
{
    struct winsize ws;
    if (t->tty && ioctl(fileno(t->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *cols = getenv("COLUMNS");
    int n = cols ? atoi(cols) : 0;
    return t->tty && n > 20 && n < 1000 ? n : 0;
}

const char *gm_term_state_sgr(const char *state)
{
    static const struct {
        const char *state, *sgr;
    } map[] = {
        {"running", "32"},   {"healthy", "32"},    {"created", "32"},    {"exists", "32"},
        {"creating", "33"},  {"partial", "33"},    {"destroying", "33"}, {"rolling_back", "33"},
        {"starting", "33"},  {"failed", "31"},     {"degraded", "31"},   {"missing", "31"},
        {"unhealthy", "31"}, {"unreadable", "31"}, {"terminated", "31"}, {"stopped", "31"},
    };
    for (size_t i = 0; state && i < sizeof map / sizeof *map; i++)
        if (strcmp(state, map[i].state) == 0)
            return map[i].sgr;
    return state && strstr(state, "DRIFT") ? "31" : NULL;
}

#define MAX_COLUMNS 16

/* Column widths that fit width (0: no limit): the widest shrinks first,
 * never below its header or 8 characters. */
static void fit(int *w, const int *floor_w, int columns, int width)
{
    int total = 0;
    for (int c = 0; c < columns; c++)
        total += w[c] + (c ? 2 : 0);
    while (width > 0 && total > width) {
        int widest = -1;
        for (int c = 0; c < columns; c++)
            if (w[c] > floor_w[c] && (widest < 0 || w[c] > w[widest]))
                widest = c;
        if (widest < 0)
            return;
        w[widest]--;
        total--;
    }
}

static void print_cell(const gm_term *t, const char *cell, int w, bool last, const char *sgr)
{
    char shown[512];
    int len = (int)strlen(cell);
    if (len > w && w >= 4)
        snprintf(shown, sizeof shown, "...%s", cell + len - (w - 3));
    else
        snprintf(shown, sizeof shown, "%.*s", w, cell);
    char styled[600];
    fputs(sgr ? gm_term_style(t, sgr, shown, styled, sizeof styled) : shown, t->out);
    if (!last)
        fprintf(t->out, "%*s", w - (int)strlen(shown) + 2, "");
}

void gm_table_print(const gm_term *t, const char *const *header, int columns,
                    const char *const *cells, int rows, gm_table_sgr_fn sgr)
{
    int w[MAX_COLUMNS], floor_w[MAX_COLUMNS];
    columns = columns > MAX_COLUMNS ? MAX_COLUMNS : columns;
    for (int c = 0; c < columns; c++) {
        w[c] = (int)strlen(header[c]);
        floor_w[c] = w[c] > 8 ? w[c] : 8;
        for (int r = 0; r < rows; r++) {
            int len = (int)strlen(cells[r * columns + c]);
            w[c] = len > w[c] ? len : w[c];
        }
        floor_w[c] = floor_w[c] < w[c] ? floor_w[c] : w[c];
    }
    fit(w, floor_w, columns, gm_term_width(t));
    for (int c = 0; c < columns; c++)
        print_cell(t, header[c], w[c], c == columns - 1, NULL);
    fputc('\n', t->out);
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < columns; c++) {
            const char *cell = cells[r * columns + c];
            print_cell(t, cell, w[c], c == columns - 1, sgr ? sgr(c, cell) : NULL);
        }
        fputc('\n', t->out);
    }
}
