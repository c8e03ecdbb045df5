/* XML responses (Query protocol) on libxml2: parsing with network access and
 * entity expansion off, and namespace-blind lookups by element name. */
#ifndef GM_AWS_XML_H
#define GM_AWS_XML_H

#include <libxml/tree.h>
#include <stddef.h>

#include "core/error.h"

/* Parses len bytes into *out_doc (xmlFreeDoc it). GM_ERR_PARSE when malformed. */
GM_MUST_CHECK gm_status gm_xml_parse(const char *data, size_t len, xmlDocPtr *out_doc,
                                     gm_error *err);

/* First child element of parent with that local name, or NULL. */
xmlNodePtr gm_xml_child(xmlNodePtr parent, const char *name);
/* Next sibling element after node with that local name, or NULL. */
xmlNodePtr gm_xml_next(xmlNodePtr node, const char *name);
/* Follows a path of local names separated by '/' from start ("a/b/c"). */
xmlNodePtr gm_xml_path(xmlNodePtr start, const char *path);
/* First element with that local name anywhere below start (depth first). */
xmlNodePtr gm_xml_find(xmlNodePtr start, const char *name);

/* The text of the element at path below start, malloc'd; NULL when absent. */
char *gm_xml_text(xmlNodePtr start, const char *path);
/* The same, copied into out (truncated); "" when absent. Returns out. */
const char *gm_xml_text_to(xmlNodePtr start, const char *path, char *out, size_t size);

#define GM_XML_FOREACH(var, parent, name) \
    for (xmlNodePtr var = gm_xml_child((parent), (name)); var; var = gm_xml_next(var, (name)))

#endif
