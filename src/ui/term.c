#include "ui/term.h"

#include <stdlib.h>
#include <string.h>
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
