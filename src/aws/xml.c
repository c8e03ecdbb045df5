#include "aws/xml.h"

#include <libxml/parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"

gm_status gm_xml_parse(const char *data, size_t len, xmlDocPtr *out_doc, gm_error *err)
{
    *out_doc = NULL;
    if (len > INT_MAX)
        return gm_error_set(err, GM_ERR_LIMIT, "xml document too large");
    xmlDocPtr doc = xmlReadMemory(data, (int)len, "response.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc || !xmlDocGetRootElement(doc)) {
        if (doc)
            xmlFreeDoc(doc);
        const xmlError *e = xmlGetLastError();
        return gm_error_set(err, GM_ERR_PARSE, "malformed xml%s%s", e && e->message ? ": " : "",
                            e && e->message ? e->message : "");
    }
    *out_doc = doc;
    return GM_OK;
}

static int is_named(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

xmlNodePtr gm_xml_child(xmlNodePtr parent, const char *name)
{
    if (!parent)
        return NULL;
    for (xmlNodePtr c = parent->children; c; c = c->next)
        if (is_named(c, name))
            return c;
    return NULL;
}

xmlNodePtr gm_xml_next(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr c = node ? node->next : NULL; c; c = c->next)
        if (is_named(c, name))
            return c;
    return NULL;
}

xmlNodePtr gm_xml_path(xmlNodePtr start, const char *path)
{
    xmlNodePtr cur = start;
    const char *p = path;
    char part[128];
    while (cur && *p) {
        size_t n = strcspn(p, "/");
        if (n == 0 || n >= sizeof part)
            return NULL;
        memcpy(part, p, n);
        part[n] = '\0';
        cur = gm_xml_child(cur, part);
        p += n;
        if (*p == '/')
            p++;
    }
    return cur;
}

xmlNodePtr gm_xml_find(xmlNodePtr start, const char *name)
{
    /* Iterative depth-first walk: responses can be deep and we fuzz this. */
    xmlNodePtr n = start ? start->children : NULL;
    while (n) {
        if (is_named(n, name))
            return n;
        /* Descend into elements only: entity references point into the DTD. */
        if (n->type == XML_ELEMENT_NODE && n->children) {
            n = n->children;
            continue;
        }
        while (n && !n->next) {
            n = n->parent;
            if (n == start)
                return NULL;
        }
        if (n)
            n = n->next;
    }
    return NULL;
}

char *gm_xml_text(xmlNodePtr start, const char *path)
{
    xmlNodePtr n = path && *path ? gm_xml_path(start, path) : start;
    if (!n)
        return NULL;
    xmlChar *c = xmlNodeGetContent(n);
    if (!c)
        return strdup("");
    char *out = strdup((const char *)c);
    xmlFree(c);
    return out;
}

const char *gm_xml_text_to(xmlNodePtr start, const char *path, char *out, size_t size)
{
    char *t = gm_xml_text(start, path);
    if (size) {
        snprintf(out, size, "%s", t ? gm_str_trim(t) : "");
    }
    free(t);
    return out;
}
