/*
 * One pass over a monthly submission with libxml2's SAX2 parser: the Melding validated by the
 * streaming XSD validator (xmlSchemaSAXPlug, the validator `xmllint --stream --schema` runs)
 * while the columns the compiled mapping names are collected, without building a tree.
 *
 * Why C: lxml exposes neither a streaming validator without a tree nor a way to feed one; the
 * validating floor is libxml2's own streaming validator, and per-element work in Python costs
 * more than the parse (docs/decisions/extraction.md). The mapping stays data: Python
 * (npr_pipeline/intake/native/__init__.py) compiles mapping.yaml into the plan this code walks;
 * nothing here knows a message type.
 *
 * Elements outside the Melding (MsgHead, MsgInfo, ...) and the Melding's own children
 * (Kontaktperson, Institusjon) are reported to a Python handler, which builds the header and
 * runs the gate; its `start` returns the plan for the Melding. An exception in the handler
 * stops the parser and is raised from parse().
 *
 * Memory: every buffer is owned by the State and freed in state_free() on every path; attribute
 * and name pointers from libxml2 are used only during their callback (names from the parser's
 * dictionary live as long as the parser context, which outlives the State's use of them).
 *
 * Names: the plan's names (namespace, elements, attributes) are interned in the parser's
 * dictionary when the Melding starts, where libxml2's SAX2 parser keeps every element and
 * attribute name and namespace it reports (xmlParseQName and the namespace declarations go
 * through xmlDictLookup), so a name matches by pointer: a strcmp per element, attribute and
 * plan entry was ~2 % of the reader's CPU on the national April (docs/benchmarks.md,
 * session 13).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#define MAX_PARSE_ERRORS 20

/* -- growable byte buffers -------------------------------------------------------------- */
typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (extra > SIZE_MAX / 2 - b->len) {
        PyErr_NoMemory();
        return -1;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *data = PyMem_RawRealloc(b->data, cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_append(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n) < 0) return -1;
    if (n) memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) {
    PyMem_RawFree(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* An attribute value as the application sees it: with replaceEntities off, libxml2's SAX2
 * hands over '&' as "&#38;" (every other reference is already decoded); decode it back. */
static int buf_set_value(Buf *b, const xmlChar *start, const xmlChar *end) {
    b->len = 0;
    size_t n = (size_t)(end - start);
    if (buf_reserve(b, n) < 0) return -1;
    const char *p = (const char *)start, *stop = (const char *)end;
    while (p < stop) {
        const char *amp = memchr(p, '&', (size_t)(stop - p));
        if (amp == NULL) {
            memcpy(b->data + b->len, p, (size_t)(stop - p));
            b->len += (size_t)(stop - p);
            break;
        }
        memcpy(b->data + b->len, p, (size_t)(amp - p));
        b->len += (size_t)(amp - p);
        b->data[b->len++] = '&';
        p = (stop - amp >= 5 && memcmp(amp, "&#38;", 5) == 0) ? amp + 5 : amp + 1;
    }
    return 0;
}

/* -- the schema, compiled once per process ---------------------------------------------- */
typedef struct {
    PyObject_HEAD xmlSchemaPtr schema;
} SchemaObject;

static void schema_dealloc(SchemaObject *self) {
    if (self->schema) xmlSchemaFree(self->schema);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int schema_init(SchemaObject *self, PyObject *args, PyObject *kwds) {
    const char *path;
    static char *kwlist[] = {"path", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s", kwlist, &path)) return -1;
    if (self->schema) return 0;
    xmlSchemaParserCtxtPtr pctxt = xmlSchemaNewParserCtxt(path);
    if (pctxt == NULL) {
        PyErr_Format(PyExc_ValueError, "cannot read schema %s", path);
        return -1;
    }
    self->schema = xmlSchemaParse(pctxt);
    xmlSchemaFreeParserCtxt(pctxt);
    if (self->schema == NULL) {
        PyErr_Format(PyExc_ValueError, "schema %s does not compile", path);
        return -1;
    }
    return 0;
}

static PyTypeObject SchemaType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "npr_pipeline.intake.native._native.Schema",
    .tp_basicsize = sizeof(SchemaObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "An XSD compiled by libxml2, for parse().",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)schema_init,
    .tp_dealloc = (destructor)schema_dealloc,
};

/* -- the plan and its columns ------------------------------------------------------------ */
enum { S_ATTR = 0, S_CHILD = 1, S_INHERIT = 2, S_POS = 3, S_LINE = 4 };

typedef struct {
    int kind;
    const xmlChar *name;  /* S_ATTR, S_CHILD: the attribute (interned) */
    const xmlChar *child; /* S_CHILD: the child element's local name (interned) */
    int from;    /* S_INHERIT: the slot in the parent table */
    /* the open row */
    Buf value;
    int null, set;
    int32_t number;
    /* the column */
    Buf data, offsets, validity;
    Py_ssize_t nulls;
} Slot;

typedef struct {
    int parent; /* table index or -1 */
    int nslots;
    Slot *slots;
    int32_t counter; /* rows numbered under the parent's open row */
    Py_ssize_t rows;
} Table;

typedef struct {
    const xmlChar *local; /* interned */
    int parent;           /* node index or -1 for a record */
    int table;  /* table index or -1 */
} Node;

static const char *RECORD_IDS[] = {"episodeID", "henvisningsperiodeID", "pasientNr", "pid"};
#define N_RECORD_IDS 4

typedef struct {
    const xmlChar *local; /* from the parser's dictionary */
    int node, table, line;
    int rid; /* index into RECORD_IDS, or -1 */
    Buf rid_value;
} Frame;

typedef struct {
    xmlParserCtxtPtr ctxt;
    PyObject *handler;
    int failed; /* a Python exception is pending: ignore every further event */
    int depth;  /* of the current element, the root is 0 */
    Frame *frames;
    int nframes;
    int melding; /* the Melding's depth while inside it; -1 before, -2 after */
    /* the plan; its names interned in the parser's dictionary */
    const xmlChar *ns, *container, *rid_names[N_RECORD_IDS];
    int main_node, nnodes, ntables;
    Node *nodes;
    Table *tables;
    /* validation */
    xmlSchemaValidCtxtPtr vctxt;
    xmlSchemaSAXPlugPtr plug;
    xmlSAXHandlerPtr vsax;
    void *vdata;
    /* what is found */
    PyObject *schema_errors; /* [(message, line, element)] */
    PyObject *parse_errors;  /* [(domain, code, level, message, line)] */
    Py_ssize_t max_errors, records;
    int doctype;
} State;

/* A name interned in the parser's dictionary (owned by it: never freed here). */
static const xmlChar *intern_utf8(State *st, const char *s, Py_ssize_t n) {
    const xmlChar *d = xmlDictLookup(st->ctxt->dict, (const xmlChar *)s, (int)n);
    if (d == NULL) PyErr_NoMemory();
    return d;
}

static const xmlChar *intern(State *st, PyObject *o) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == NULL) return NULL;
    if (n > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "plan: name too long");
        return NULL;
    }
    return intern_utf8(st, s, n);
}

static void plan_free(State *st) {
    PyMem_RawFree(st->nodes);
    st->nodes = NULL;
    st->nnodes = 0;
    for (int t = 0; t < st->ntables; t++) {
        Table *tb = &st->tables[t];
        for (int s = 0; s < tb->nslots; s++) {
            Slot *sl = &tb->slots[s];
            buf_free(&sl->value);
            buf_free(&sl->data);
            buf_free(&sl->offsets);
            buf_free(&sl->validity);
        }
        PyMem_RawFree(tb->slots);
    }
    PyMem_RawFree(st->tables);
    st->tables = NULL;
    st->ntables = 0;
}

/* The plan as Python compiles it (npr_pipeline/intake/native/__init__.py, Plan.spec):
 * (namespace, container, main_node, nodes, tables), nodes [(local, parent, table)],
 * tables [(parent, [(kind, name, child, from)])]. */
static int plan_load(State *st, PyObject *spec) {
    PyObject *ns, *container, *nodes, *tables;
    int main_node;
    if (!PyArg_ParseTuple(spec, "UUiO!O!", &ns, &container, &main_node, &PyList_Type, &nodes,
                          &PyList_Type, &tables))
        return -1;
    if ((st->ns = intern(st, ns)) == NULL || (st->container = intern(st, container)) == NULL)
        return -1;
    for (int k = 0; k < N_RECORD_IDS; k++)
        if ((st->rid_names[k] = intern_utf8(st, RECORD_IDS[k], -1)) == NULL) return -1;
    Py_ssize_t nn = PyList_GET_SIZE(nodes), nt = PyList_GET_SIZE(tables);
    st->nodes = PyMem_RawCalloc(nn ? nn : 1, sizeof(Node));
    st->tables = PyMem_RawCalloc(nt ? nt : 1, sizeof(Table));
    if (st->nodes == NULL || st->tables == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nn; i++) {
        PyObject *local;
        Node *nd = &st->nodes[i];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(nodes, i), "Uii", &local, &nd->parent, &nd->table))
            return -1;
        st->nnodes++;
        if ((nd->local = intern(st, local)) == NULL) return -1;
        if (nd->parent >= (int)i || nd->parent < -1 || nd->table >= (int)nt || nd->table < -1) {
            PyErr_SetString(PyExc_ValueError, "plan: node out of range");
            return -1;
        }
    }
    for (Py_ssize_t t = 0; t < nt; t++) {
        PyObject *slots;
        Table *tb = &st->tables[t];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(tables, t), "iO!", &tb->parent, &PyList_Type, &slots))
            return -1;
        st->ntables++;
        if (tb->parent >= (int)t || tb->parent < -1) {
            PyErr_SetString(PyExc_ValueError, "plan: parent table out of range");
            return -1;
        }
        Py_ssize_t ns_ = PyList_GET_SIZE(slots);
        tb->slots = PyMem_RawCalloc(ns_ ? ns_ : 1, sizeof(Slot));
        if (tb->slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t s = 0; s < ns_; s++) {
            PyObject *name, *child;
            Slot *sl = &tb->slots[s];
            if (!PyArg_ParseTuple(PyList_GET_ITEM(slots, s), "iOOi", &sl->kind, &name, &child,
                                  &sl->from))
                return -1;
            tb->nslots++;
            if (name != Py_None && (sl->name = intern(st, name)) == NULL) return -1;
            if (child != Py_None && (sl->child = intern(st, child)) == NULL) return -1;
            int bad = sl->kind < S_ATTR || sl->kind > S_LINE;
            bad |= (sl->kind == S_ATTR || sl->kind == S_CHILD) && sl->name == NULL;
            bad |= sl->kind == S_CHILD && sl->child == NULL;
            if (sl->kind == S_INHERIT) {
                bad |= tb->parent < 0 || sl->from < 0 || sl->from >= st->tables[tb->parent].nslots;
                if (!bad) {
                    int k = st->tables[tb->parent].slots[sl->from].kind;
                    bad |= k == S_POS || k == S_LINE;
                }
            }
            if (bad) {
                PyErr_SetString(PyExc_ValueError, "plan: bad slot");
                return -1;
            }
        }
    }
    if (main_node < 0 || main_node >= (int)nn) {
        PyErr_SetString(PyExc_ValueError, "plan: main record out of range");
        return -1;
    }
    st->main_node = main_node;
    return 0;
}

/* -- rows --------------------------------------------------------------------------------- */
static int is_int_slot(const Slot *sl) { return sl->kind == S_POS || sl->kind == S_LINE; }

/* The value of the attribute `name` (no namespace) among SAX2's attributes, or -1 if absent. */
static int find_attr(const char *name, int nb, const xmlChar **attrs) {
    for (int i = 0; i < nb; i++)
        if (attrs[i * 5 + 2] == NULL && strcmp((const char *)attrs[i * 5], name) == 0) return i;
    return -1;
}

/* find_attr() for a name interned in the parser's dictionary: a pointer comparison. */
static int find_interned_attr(const xmlChar *name, int nb, const xmlChar **attrs) {
    for (int i = 0; i < nb; i++)
        if (attrs[i * 5] == name && attrs[i * 5 + 2] == NULL) return i;
    return -1;
}

static int set_from_attr(Slot *sl, int nb, const xmlChar **attrs) {
    int i = find_interned_attr(sl->name, nb, attrs);
    sl->set = 1;
    sl->null = i < 0;
    if (i < 0) return 0;
    return buf_set_value(&sl->value, attrs[i * 5 + 3], attrs[i * 5 + 4]);
}

static int row_open(State *st, int t, int line, int nb, const xmlChar **attrs) {
    Table *tb = &st->tables[t];
    for (int s = 0; s < tb->nslots; s++) {
        Slot *sl = &tb->slots[s];
        switch (sl->kind) {
        case S_ATTR:
            if (set_from_attr(sl, nb, attrs) < 0) return -1;
            break;
        case S_CHILD:
            sl->set = 0;
            sl->null = 1;
            break;
        case S_INHERIT: {
            Slot *from = &st->tables[tb->parent].slots[sl->from];
            sl->null = from->null;
            sl->value.len = 0;
            if (!from->null && buf_append(&sl->value, from->value.data, from->value.len) < 0)
                return -1;
            break;
        }
        case S_POS:
            sl->number = ++tb->counter;
            break;
        case S_LINE:
            sl->number = line;
            break;
        }
    }
    for (int c = t + 1; c < st->ntables; c++)
        if (st->tables[c].parent == t) st->tables[c].counter = 0;
    return 0;
}

static int row_close(Table *tb) {
    Py_ssize_t row = tb->rows;
    for (int s = 0; s < tb->nslots; s++) {
        Slot *sl = &tb->slots[s];
        if (is_int_slot(sl)) {
            if (buf_append(&sl->data, &sl->number, sizeof(int32_t)) < 0) return -1;
            continue;
        }
        if (row % 8 == 0) {
            char zero = 0;
            if (buf_append(&sl->validity, &zero, 1) < 0) return -1;
        }
        if (sl->offsets.len == 0) {
            int32_t zero = 0;
            if (buf_append(&sl->offsets, &zero, sizeof zero) < 0) return -1;
        }
        if (sl->null) {
            sl->nulls++;
        } else {
            if (buf_append(&sl->data, sl->value.data, sl->value.len) < 0) return -1;
            sl->validity.data[row / 8] |= (char)(1 << (row % 8));
        }
        if (sl->data.len > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "a column holds more than 2 GiB");
            return -1;
        }
        int32_t end = (int32_t)sl->data.len;
        if (buf_append(&sl->offsets, &end, sizeof end) < 0) return -1;
    }
    tb->rows++;
    return 0;
}

/* -- errors -------------------------------------------------------------------------------- */
static void fail(State *st) {
    st->failed = 1;
    xmlStopParser(st->ctxt);
}

static PyObject *message_of(const xmlError *err) {
    const char *m = err->message ? err->message : "";
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' ')) n--;
    return PyUnicode_DecodeUTF8(m, (Py_ssize_t)n, "replace");
}

static void on_parse_error(void *ctx, xmlErrorPtr err) {
    State *st = ((xmlParserCtxtPtr)ctx)->_private;
    if (st == NULL || st->failed || PyList_GET_SIZE(st->parse_errors) >= MAX_PARSE_ERRORS) return;
    PyObject *msg = message_of(err);
    PyObject *item = msg ? Py_BuildValue("iiiNi", err->domain, err->code, (int)err->level, msg,
                                         err->line)
                         : NULL;
    if (item == NULL || PyList_Append(st->parse_errors, item) < 0) fail(st);
    Py_XDECREF(item);
}

/* The element an error is about, named as the tree reader named it: its local name and the
 * nearest record id (itself: "Episode episodeID=1"; an ancestor: "Kode (episodeID=1)"). */
static PyObject *element_name(State *st) {
    Frame *top = &st->frames[st->depth];
    for (int d = st->depth; d >= st->melding && d >= 0; d--) {
        Frame *f = &st->frames[d];
        if (f->rid < 0) continue;
        const char *fmt = d == st->depth ? "%s %s=%s" : "%s (%s=%s)";
        if (buf_reserve(&f->rid_value, 1) < 0) return NULL;
        f->rid_value.data[f->rid_value.len] = 0;
        return PyUnicode_FromFormat(fmt, top->local, RECORD_IDS[f->rid], f->rid_value.data);
    }
    return PyUnicode_FromString((const char *)top->local);
}

static void on_schema_error(void *ctx, xmlErrorPtr err) {
    State *st = ctx;
    if (st->failed || st->depth < 0 || PyList_GET_SIZE(st->schema_errors) >= st->max_errors) return;
    PyObject *msg = message_of(err);
    PyObject *name = msg ? element_name(st) : NULL;
    PyObject *item = name ? Py_BuildValue("NiN", msg, st->frames[st->depth].line, name) : NULL;
    if (item == NULL) {
        Py_XDECREF(msg);
        Py_XDECREF(name);
        fail(st);
        return;
    }
    if (PyList_Append(st->schema_errors, item) < 0) fail(st);
    Py_DECREF(item);
}

/* -- the handler's view of elements outside the Melding ------------------------------------ */
static PyObject *tag_of(const xmlChar *local, const xmlChar *uri) {
    return uri ? PyUnicode_FromFormat("{%s}%s", uri, local)
               : PyUnicode_FromString((const char *)local);
}

static PyObject *attrs_of(int nb, const xmlChar **attrs) {
    PyObject *d = PyDict_New();
    Buf value = {0};
    for (int i = 0; d && i < nb; i++) {
        const xmlChar **a = attrs + i * 5;
        PyObject *k = tag_of(a[0], a[2]), *v = NULL;
        if (k && buf_set_value(&value, a[3], a[4]) == 0)
            v = PyUnicode_DecodeUTF8(value.data ? value.data : "", (Py_ssize_t)value.len, "strict");
        if (v == NULL || PyDict_SetItem(d, k, v) < 0) Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    buf_free(&value);
    return d;
}

static int push_frame(State *st, const xmlChar *local, int line) {
    if (st->depth + 1 >= st->nframes) {
        int n = st->nframes ? st->nframes * 2 : 64;
        Frame *f = PyMem_RawRealloc(st->frames, (size_t)n * sizeof(Frame));
        if (f == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memset(f + st->nframes, 0, (size_t)(n - st->nframes) * sizeof(Frame));
        st->frames = f;
        st->nframes = n;
    }
    Frame *f = &st->frames[++st->depth];
    f->local = local;
    f->node = f->table = f->rid = -1;
    f->line = line;
    f->rid_value.len = 0;
    return 0;
}

static int record_id(State *st, Frame *f, int nb, const xmlChar **attrs) {
    if (nb == 0) return 0;
    for (int k = 0; k < N_RECORD_IDS; k++) {
        int i = find_interned_attr(st->rid_names[k], nb, attrs);
        if (i >= 0 && attrs[i * 5 + 4] > attrs[i * 5 + 3]) {
            f->rid = k;
            return buf_set_value(&f->rid_value, attrs[i * 5 + 3], attrs[i * 5 + 4]);
        }
    }
    return 0;
}

static int start_melding(State *st, PyObject *plan) {
    PyObject *schema, *spec;
    if (!PyArg_ParseTuple(plan, "O!O", &SchemaType, &schema, &spec)) return -1;
    if (plan_load(st, spec) < 0) return -1;
    st->vctxt = xmlSchemaNewValidCtxt(((SchemaObject *)schema)->schema);
    if (st->vctxt == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    xmlSchemaSetValidStructuredErrors(st->vctxt, on_schema_error, st);
    st->vsax = NULL; /* no user handler behind the validator: this code feeds it */
    st->vdata = NULL;
    st->plug = xmlSchemaSAXPlug(st->vctxt, &st->vsax, &st->vdata);
    if (st->plug == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "xmlSchemaSAXPlug failed");
        return -1;
    }
    st->melding = st->depth;
    return 0;
}

/* -- SAX callbacks --------------------------------------------------------------------------- */
static int extract_start(State *st, const xmlChar *local, const xmlChar *uri, int nb,
                         const xmlChar **attrs) {
    Frame *f = &st->frames[st->depth], *up = &st->frames[st->depth - 1];
    if (uri != st->ns) return 0;
    if (up->table >= 0) { /* a column from this child of the row's element */
        Table *tb = &st->tables[up->table];
        for (int s = 0; s < tb->nslots; s++) {
            Slot *sl = &tb->slots[s];
            if (sl->kind == S_CHILD && !sl->set && sl->child == local)
                if (set_from_attr(sl, nb, attrs) < 0) return -1;
        }
    }
    int parent = up->node;
    if (parent < 0 && !(st->depth == st->melding + 2 && up->local == st->container)) return 0;
    for (int n = 0; n < st->nnodes; n++) {
        if (st->nodes[n].parent != parent || st->nodes[n].local != local) continue;
        f->node = n;
        f->table = st->nodes[n].table;
        if (f->table >= 0) {
            /* a row needs its parent table's row open (the schema guarantees it; an invalid
             * file's rows are discarded, but must not read a row that is not there) */
            int pt = st->tables[f->table].parent;
            int open = pt < 0;
            for (int d = st->depth - 1; !open && d > st->melding; d--) open = st->frames[d].table == pt;
            if (!open) f->table = -1;
            else if (row_open(st, f->table, f->line, nb, attrs) < 0) return -1;
        }
        break;
    }
    return 0;
}

static void on_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                     int nb_ns, const xmlChar **namespaces, int nb_attrs, int nb_defaulted,
                     const xmlChar **attrs) {
    xmlParserCtxtPtr ctxt = ctx;
    State *st = ctxt->_private;
    if (st->failed) return;
    int line = ctxt->input ? ctxt->input->line : 0;
    if (push_frame(st, local, line) < 0) return fail(st);
    if (st->melding >= 0) {
        if (record_id(st, &st->frames[st->depth], nb_attrs, attrs) < 0) return fail(st);
        st->vsax->startElementNs(st->vdata, local, prefix, uri, nb_ns, namespaces, nb_attrs,
                                 nb_defaulted, attrs);
        if (st->failed) return;
        if (st->depth == st->melding + 1) {
            PyObject *a = attrs_of(nb_attrs, attrs);
            PyObject *r = a ? PyObject_CallMethod(st->handler, "child", "sOi", local, a, line) : NULL;
            Py_XDECREF(a);
            if (r == NULL) return fail(st);
            Py_DECREF(r);
        } else if (extract_start(st, local, uri, nb_attrs, attrs) < 0) {
            return fail(st);
        }
        return;
    }
    PyObject *tag = tag_of(local, uri), *a = attrs_of(nb_attrs, attrs), *r = NULL;
    if (tag && a) r = PyObject_CallMethod(st->handler, "start", "OOi", tag, a, line);
    Py_XDECREF(tag);
    Py_XDECREF(a);
    if (r == NULL) return fail(st);
    if (r != Py_None && st->melding == -1) {
        if (start_melding(st, r) < 0) {
            Py_DECREF(r);
            return fail(st);
        }
        st->vsax->startElementNs(st->vdata, local, prefix, uri, nb_ns, namespaces, nb_attrs,
                                 nb_defaulted, attrs);
    }
    Py_DECREF(r);
}

static void on_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
    xmlParserCtxtPtr ctxt = ctx;
    State *st = ctxt->_private;
    if (st->failed || st->depth < 0) return;
    Frame *f = &st->frames[st->depth];
    int outside = st->melding < 0;
    if (!outside) {
        st->vsax->endElementNs(st->vdata, local, prefix, uri);
        if (st->failed) return;
        if (f->table >= 0 && row_close(&st->tables[f->table]) < 0) return fail(st);
        if (f->node == st->main_node) st->records++;
        if (st->depth == st->melding) { /* the Melding ends: the validator's last checks */
            xmlSchemaSAXUnplug(st->plug);
            st->plug = NULL;
            st->melding = -2;
            outside = 1;
        }
    }
    if (outside && !st->failed) {
        PyObject *tag = tag_of(local, uri);
        PyObject *r = tag ? PyObject_CallMethod(st->handler, "end", "O", tag) : NULL;
        Py_XDECREF(tag);
        if (r == NULL) return fail(st);
        Py_DECREF(r);
    }
    st->depth--;
}

static void on_text(void *ctx, const xmlChar *ch, int len) {
    xmlParserCtxtPtr ctxt = ctx;
    State *st = ctxt->_private;
    if (st->failed) return;
    if (st->melding >= 0) {
        st->vsax->characters(st->vdata, ch, len);
        return;
    }
    PyObject *r = PyObject_CallMethod(st->handler, "data", "s#", ch, (Py_ssize_t)len);
    if (r == NULL) return fail(st);
    Py_DECREF(r);
}

static void on_cdata(void *ctx, const xmlChar *ch, int len) {
    xmlParserCtxtPtr ctxt = ctx;
    State *st = ctxt->_private;
    if (!st->failed && st->melding >= 0 && st->vsax->cdataBlock) {
        st->vsax->cdataBlock(st->vdata, ch, len);
        return;
    }
    on_text(ctx, ch, len);
}

/* A DOCTYPE of any kind is refused (the reader's prolog check refuses it first). */
static void on_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
    xmlParserCtxtPtr ctxt = ctx;
    State *st = ctxt->_private;
    st->doctype = 1;
    xmlStopParser(ctxt);
}

/* -- results ---------------------------------------------------------------------------------- */
static PyObject *bytes_of(const Buf *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
}

/* Per table, per slot: ("i", rows, int32 bytes) or ("s", rows, nulls, validity, offsets, data),
 * the buffers of an Arrow int32 or string array. */
static PyObject *columns_of(State *st) {
    PyObject *out = PyList_New(st->ntables);
    for (int t = 0; out && t < st->ntables; t++) {
        Table *tb = &st->tables[t];
        PyObject *cols = PyList_New(tb->nslots);
        if (cols == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, t, cols);
        for (int s = 0; s < tb->nslots; s++) {
            Slot *sl = &tb->slots[s];
            PyObject *col;
            if (is_int_slot(sl)) {
                col = Py_BuildValue("snN", "i", tb->rows, bytes_of(&sl->data));
            } else {
                if (tb->rows == 0) {
                    int32_t zero = 0;
                    if (buf_append(&sl->offsets, &zero, sizeof zero) < 0) {
                        Py_CLEAR(out);
                        break;
                    }
                }
                col = Py_BuildValue("snnNNN", "s", tb->rows, sl->nulls, bytes_of(&sl->validity),
                                    bytes_of(&sl->offsets), bytes_of(&sl->data));
            }
            if (col == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(cols, s, col);
        }
    }
    return out;
}

static void state_free(State *st) {
    if (st->plug) xmlSchemaSAXUnplug(st->plug);
    if (st->vctxt) xmlSchemaFreeValidCtxt(st->vctxt);
    st->plug = NULL;
    st->vctxt = NULL;
    plan_free(st);
    for (int i = 0; i < st->nframes; i++) buf_free(&st->frames[i].rid_value);
    PyMem_RawFree(st->frames);
    st->frames = NULL;
    Py_CLEAR(st->schema_errors);
    Py_CLEAR(st->parse_errors);
}

static int read_file(void *fp, char *buffer, int len) {
    size_t n = fread(buffer, 1, (size_t)len, fp);
    return n == 0 && ferror(fp) ? -1 : (int)n;
}

static int keep_file(void *fp) { return 0; } /* closed by native_parse, on every path */

static PyObject *native_parse(PyObject *self, PyObject *args, PyObject *kwds) {
    const char *path;
    PyObject *handler;
    Py_ssize_t max_errors;
    static char *kwlist[] = {"path", "handler", "max_errors", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sOn", kwlist, &path, &handler, &max_errors))
        return NULL;
    State st = {0};
    st.handler = handler;
    st.depth = -1;
    st.melding = -1;
    st.max_errors = max_errors;
    st.schema_errors = PyList_New(0);
    st.parse_errors = PyList_New(0);
    if (st.schema_errors == NULL || st.parse_errors == NULL) {
        state_free(&st);
        return NULL;
    }
    /* Bytes from our own handle: no URI resolution of the path and no transparent gzip (the
     * lxml reader read a Python file handle; the prolog check refuses anything else). */
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        state_free(&st);
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    }
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = on_start;
    sax.endElementNs = on_end;
    sax.characters = on_text;
    sax.ignorableWhitespace = on_text;
    sax.cdataBlock = on_cdata;
    sax.internalSubset = on_doctype;
    sax.serror = on_parse_error;
    xmlParserCtxtPtr ctxt = xmlCreateIOParserCtxt(&sax, NULL, read_file, keep_file, fp,
                                                  XML_CHAR_ENCODING_NONE);
    if (ctxt == NULL) {
        fclose(fp);
        state_free(&st);
        return PyErr_NoMemory();
    }
    st.ctxt = ctxt;
    ctxt->_private = &st;
    /* lxml's hardened options: no DTD, no entity substitution, no network, no huge mode */
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET);
    xmlParseDocument(ctxt);
    int well_formed = ctxt->wellFormed;
    PyObject *result = NULL;
    if (!st.failed) {
        PyObject *columns = columns_of(&st);
        if (columns)
            result = Py_BuildValue("{s:O,s:O,s:N,s:n,s:O,s:O,s:O}", "schema_errors",
                                   st.schema_errors, "parse_errors", st.parse_errors, "columns",
                                   columns, "records", st.records, "well_formed",
                                   well_formed ? Py_True : Py_False, "doctype",
                                   st.doctype ? Py_True : Py_False, "melding_closed",
                                   st.melding == -2 ? Py_True : Py_False);
    }
    ctxt->_private = NULL;
    state_free(&st);
    xmlFreeParserCtxt(ctxt);
    fclose(fp);
    return result;
}

/* -- the probe: is this an ordinary file, and of what MsgHead type ------------------------- */
/* Intake opened every file twice with lxml before its one native pass: once for MsgInfo's
 * Type (a daily event or report type goes the typed route) and once for the prolog (no
 * DOCTYPE, root MsgHead). probe() answers both from one SAX2 parse that stops where MsgInfo
 * ends, and answers only when nothing was unusual: it returns None (Python takes the careful
 * route, the lxml checks as before) on any diagnostic of libxml2 (error or warning) or read
 * error before it stops, a DOCTYPE, a root other than MsgHead in MsgHead's namespace, a
 * MsgInfo inside a MsgInfo, or no MsgInfo. Otherwise it returns the V attribute of the first
 * Type child of the first MsgInfo, "" when there is no such child or it has no V: what the
 * lxml reading, `info.find(MH + "Type").get("V")` of the first MsgInfo to end, finds. Why
 * that is enough for the old checks: npr_pipeline/intake/daily.py, untyped_by_probe(). */
typedef struct {
    xmlParserCtxtPtr ctxt;
    FILE *fp;
    const char *ns; /* MsgHead's namespace */
    int depth;      /* of the current element, the root is 0 */
    int info;       /* the first MsgInfo's depth while inside it, else -1 */
    int type_seen;  /* that MsgInfo's first Type child has been seen */
    int unusual;    /* a diagnostic, a read error or an unexpected structure: no answer */
    int found;      /* the first MsgInfo ended cleanly */
    int failed;     /* a Python exception is pending (no memory) */
    Buf value;      /* the V attribute, decoded */
} Probe;

/* Stop at once from a SAX callback (xmlStopParser is meant for that). */
static void probe_stop(Probe *p, int unusual) {
    p->unusual |= unusual;
    xmlStopParser(p->ctxt);
}

static int is_msghead(const Probe *p, const xmlChar *local, const xmlChar *uri, const char *name) {
    return uri != NULL && strcmp((const char *)uri, p->ns) == 0 &&
           strcmp((const char *)local, name) == 0;
}

static void probe_start(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                        int nb_ns, const xmlChar **namespaces, int nb_attrs, int nb_defaulted,
                        const xmlChar **attrs) {
    Probe *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (p->unusual) return probe_stop(p, 1); /* a non-fatal error (namespaces) came first */
    int depth = ++p->depth;
    if (depth == 0 && !is_msghead(p, local, uri, "MsgHead")) return probe_stop(p, 1);
    if (is_msghead(p, local, uri, "MsgInfo")) {
        if (p->info >= 0) return probe_stop(p, 1); /* nested: which one ends first? */
        p->info = depth;
    } else if (p->info >= 0 && depth == p->info + 1 && !p->type_seen &&
               is_msghead(p, local, uri, "Type")) {
        p->type_seen = 1;
        int i = find_attr("V", nb_attrs, attrs);
        if (i >= 0 && buf_set_value(&p->value, attrs[i * 5 + 3], attrs[i * 5 + 4]) < 0) {
            p->failed = 1;
            probe_stop(p, 1);
        }
    }
}

static void probe_end(void *ctx, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri) {
    xmlParserCtxtPtr ctxt = ctx;
    Probe *p = ctxt->_private;
    if (p->unusual) return probe_stop(p, 1);
    if (p->depth == p->info) { /* the first MsgInfo ends: its verdict is taken now */
        p->found = ctxt->wellFormed && ctxt->nsWellFormed;
        return probe_stop(p, !p->found);
    }
    p->depth--;
}

static void probe_doctype(void *ctx, const xmlChar *name, const xmlChar *ext, const xmlChar *sys) {
    probe_stop(((xmlParserCtxtPtr)ctx)->_private, 1);
}

/* Any error or warning: noted only (stopping from inside libxml2's error path is not safe);
 * the next SAX callback stops, and probe_read() starves the parser meanwhile. */
static void probe_diagnostic(void *ctx, xmlErrorPtr err) {
    Probe *p = ((xmlParserCtxtPtr)ctx)->_private;
    if (!p->found) p->unusual = 1;
}

static int probe_read(void *ctx, char *buffer, int len) {
    Probe *p = ctx;
    if (p->unusual) return 0; /* nothing more to parse: the answer is None already */
    size_t n = fread(buffer, 1, (size_t)len, p->fp);
    if (n == 0 && ferror(p->fp)) {
        p->unusual = 1;
        return -1;
    }
    return (int)n;
}

static PyObject *native_probe(PyObject *self, PyObject *args, PyObject *kwds) {
    const char *path;
    static char *kwlist[] = {"path", "namespace", NULL};
    Probe p = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss", kwlist, &path, &p.ns)) return NULL;
    p.depth = -1;
    p.info = -1;
    p.fp = fopen(path, "rb");
    if (p.fp == NULL) return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    xmlSAXHandler sax;
    memset(&sax, 0, sizeof sax);
    sax.initialized = XML_SAX2_MAGIC;
    sax.startElementNs = probe_start;
    sax.endElementNs = probe_end;
    sax.internalSubset = probe_doctype;
    sax.serror = probe_diagnostic;
    xmlParserCtxtPtr ctxt = xmlCreateIOParserCtxt(&sax, NULL, probe_read, keep_file, &p,
                                                  XML_CHAR_ENCODING_NONE);
    if (ctxt == NULL) {
        fclose(p.fp);
        return PyErr_NoMemory();
    }
    p.ctxt = ctxt;
    ctxt->_private = &p;
    xmlCtxtUseOptions(ctxt, XML_PARSE_NONET); /* as parse(): no DTD, no entity substitution */
    xmlParseDocument(ctxt);
    PyObject *result = NULL;
    if (p.failed)
        PyErr_NoMemory();
    else if (p.found && !p.unusual)
        result = PyUnicode_DecodeUTF8(p.value.data ? p.value.data : "", (Py_ssize_t)p.value.len,
                                      "strict");
    else
        result = Py_NewRef(Py_None);
    xmlFreeParserCtxt(ctxt);
    fclose(p.fp);
    buf_free(&p.value);
    return result;
}

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))native_parse, METH_VARARGS | METH_KEYWORDS,
     "parse(path, handler, max_errors) -> dict: one validating, extracting pass."},
    {"probe", (PyCFunction)(void (*)(void))native_probe, METH_VARARGS | METH_KEYWORDS,
     "probe(path, namespace) -> str | None: MsgInfo's Type V of an ordinary file, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_native",
    .m_doc = "libxml2 SAX2 + streaming XSD validation + extraction.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    xmlInitParser();
    if (PyType_Ready(&SchemaType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&SchemaType);
    if (PyModule_AddObject(m, "Schema", (PyObject *)&SchemaType) < 0) {
        Py_DECREF(&SchemaType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
