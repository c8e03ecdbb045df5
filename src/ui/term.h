/* Terminal output on stderr: colour and TTY awareness (NO_COLOR honoured). */
#ifndef GM_UI_TERM_H
#define GM_UI_TERM_H

#include <stdbool.h>
#include <stdio.h>

typedef struct gm_term {
    FILE *out;  /* stderr */
    bool tty;   /* out is a terminal */
    bool color; /* ANSI colour allowed */
} gm_term;

/* Detects the TTY and colour settings for stream (NO_COLOR, TERM=dumb,
 * no_color_flag). */
void gm_term_init(gm_term *t, FILE *stream, bool no_color_flag);

/* Wraps text in an SGR sequence when colour is on ("1" bold, "31" red,
 * "32" green, "33" yellow, "2" dim). Returns a static-per-call-site-safe
 * pointer: the caller passes a buffer. */
const char *gm_term_style(const gm_term *t, const char *sgr, const char *text, char *buf,
                          size_t size);

/* The terminal's width in columns: the stream's window size, else $COLUMNS,
 * else 0 (not a terminal: no limit). */
int gm_term_width(const gm_term *t);

/* The colour of a deployment or resource state in tables: green for running
 * and healthy, yellow for the states on the way or partial, red for failed,
 * degraded, missing or drift; NULL for none. */
const char *gm_term_state_sgr(const char *state);

/* A table printed to fit the terminal: cells are plain text; columns that do
 * not fit are shortened from the left ("...1234") one at a time, widest
 * first; a column's cells may be coloured by a callback. */
typedef const char *(*gm_table_sgr_fn)(int column, const char *cell);
void gm_table_print(const gm_term *t, const char *const *header, int columns,
                    const char *const *cells, int rows, gm_table_sgr_fn sgr);

#endif
