/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image config's User resolved as Docker resolves it (moby/sys/user's
 * GetExecUser), through the image's own /etc/passwd and /etc/group (etc.c
 * keeps them at import):
 *   ""            0:0
 *   uid, name     the first passwd entry whose uid (or name) it is: its uid
 *                 and primary gid, and as additional gids every group that
 *                 lists that entry's name; a uid with no entry stays, gid 0;
 *                 a name with no entry is refused
 *   user:gid      that gid, no additional gids
 *   user:group    the first group entry of that name's gid; refused if none
 * The files are parsed by glibc (fgetpwent_r, fgetgrent_r on a memory
 * stream): a malformed line (a missing or non-numeric id, too few fields)
 * is skipped, as getpwnam(3) would. glibc clamps an id over 32 bits to
 * 4294967295, the "no id" value: an entry with that uid or gid is refused
 * where it would be used, naming its line.
 */
#include "rootfs-tools/image/internal.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#define ID_MAX 4294967294u /* (uid_t)-1 means "no id" to the kernel */

/* A memory stream on f's text and a buffer that no line overflows. */
struct etc_reader {
	const struct img_etc_file *f;
	FILE *s;
	char *buf;
	size_t buflen;
};

static int reader_open(struct etc_reader *r, const struct img_etc_file *f, const char *what,
		       struct kv_err **err)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	if (f->state != IMG_ETC_FILE || f->len == 0)
		return 0; /* no entries */
	if (memchr(f->text, '\0', f->len))
		return kv_err_plain(err, EINVAL, "the image's %s has a NUL byte", what);
	/* A line, then (fgetgrent_r) a pointer per member after it: at most
	 * one member per two bytes of the line. */
	r->buflen = f->len * (1 + sizeof(char *)) + 256;
	r->buf = kv_malloc0(r->buflen);
	r->s = fmemopen(f->text, f->len, "r");
	if (!r->s) {
		free(r->buf);
		return kv_err_make(err, errno, "the image's %s: fmemopen", what);
	}
	return 0;
}

static void reader_close(struct etc_reader *r)
{
	if (r->s)
		fclose(r->s);
	free(r->buf);
}

/* The line (from 1) that the entry just read ended on. */
static unsigned reader_line(const struct etc_reader *r)
{
	long pos = ftell(r->s);
	size_t end = pos < 0 ? r->f->len : (size_t)pos;
	unsigned n = 0;
	for (size_t i = 0; i < end && i < r->f->len; i++)
		n += r->f->text[i] == '\n';
	return end && r->f->text[end - 1] == '\n' ? n : n + 1;
}

/* The first line naming NAME as its first field (one glibc skipped as
 * malformed): its number (0: none) and text (len bytes) in *line. */
static unsigned line_of_name(const struct img_etc_file *f, const char *name, const char **line,
			     size_t *len)
{
	size_t nl = strlen(name);
	unsigned no = 1;
	for (const char *p = f->text; p && p < f->text + f->len; no++) {
		const char *eol = memchr(p, '\n', (size_t)(f->text + f->len - p));
		*len = eol ? (size_t)(eol - p) : (size_t)(f->text + f->len - p);
		*line = p;
		if (*len > nl && memcmp(p, name, nl) == 0 && p[nl] == ':')
			return no;
		p = eol ? eol + 1 : NULL;
	}
	return 0;
}

/* Why glibc skipped the passwd line (name:password:uid:gid:...): its field. */
static int pw_line_fail(unsigned no, const char *line, size_t len, struct kv_err **err)
{
	static const char *const what[] = {"uid", "gid"};
	const char *p = line, *end = line + len;
	for (int field = 0; field < 4; field++) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *fend = colon ? colon : end;
		int idlen = (int)(fend - p < 24 ? fend - p : 24);
		if (field >= 2) {
			char id[32];
			snprintf(id, sizeof(id), "%.*s%s", idlen, p, fend - p > idlen ? "..." : "");
			uint64_t v = 0;
			/* The whole field, not the copy shown (at most 24 bytes of it). */
			bool num = fend > p && strspn(p, "0123456789") >= (size_t)(fend - p);
			for (const char *c = p; num && c < fend && v <= ID_MAX; c++)
				v = v * 10 + (uint64_t)(*c - '0');
			if (!num)
				return kv_err_plain(err, EINVAL,
						    "the image's /etc/passwd line %u: %s \"%s\" is "
						    "not a number",
						    no, what[field - 2], id);
			if (v > ID_MAX)
				return kv_err_plain(err, ERANGE,
						    "the image's /etc/passwd line %u: %s %s out of "
						    "range (over %u)",
						    no, what[field - 2], id, ID_MAX);
		}
		if (!colon && field < 3)
			return kv_err_plain(err, EINVAL,
					    "the image's /etc/passwd line %u: too few fields "
					    "(name:password:uid:gid:...)",
					    no);
		p = colon ? colon + 1 : end;
	}
	return kv_err_plain(err, EINVAL, "the image's /etc/passwd line %u: malformed", no);
}

/* Entries glibc's "compat" mode gives meaning (+name, -name): not users here. */
static bool nis_name(const char *n)
{
	return n[0] == '+' || n[0] == '-';
}

/* 1: the glibc call filled the entry; 0: the end; <0: an error. */
static int next_rc(int e, const char *what, struct kv_err **err)
{
	if (e == 0)
		return 1;
	if (e == ENOENT)
		return 0;
	return kv_err_make(err, e, "the image's %s", what);
}

struct pw_hit {
	char *name;
	uint32_t uid, gid;
};

/* The first passwd entry named name, or (numeric) with uid num: 1, else 0. */
static int pw_find(const struct img_etc_file *f, const char *name, bool numeric, uint32_t num,
		   struct pw_hit *hit, struct kv_err **err)
{
	struct etc_reader r;
	if (reader_open(&r, f, "/etc/passwd", err) < 0)
		return -1;
	int rc = 0;
	while (r.s && rc == 0) {
		struct passwd pw, *res = NULL;
		rc = next_rc(fgetpwent_r(r.s, &pw, r.buf, r.buflen, &res), "/etc/passwd", err);
		if (rc <= 0)
			break;
		rc = 0;
		if (nis_name(pw.pw_name) ||
		    (strcmp(pw.pw_name, name) != 0 && !(numeric && pw.pw_uid == num)))
			continue;
		if (pw.pw_uid > ID_MAX || pw.pw_gid > ID_MAX) {
			rc = kv_err_plain(err, ERANGE,
					  "the image's /etc/passwd line %u: %s out of range (over "
					  "%u)",
					  reader_line(&r), pw.pw_uid > ID_MAX ? "uid" : "gid",
					  ID_MAX);
			break;
		}
		*hit = (struct pw_hit){kv_strdup(pw.pw_name), pw.pw_uid, pw.pw_gid};
		rc = 1;
	}
	reader_close(&r);
	return rc;
}

/*
 * name non-NULL: the first group of that name, its gid in *gid (1, else 0).
 * member non-NULL: every group listing member, their gids in *gids.
 */
static int gr_scan(const struct img_etc_file *f, const char *name, const char *member,
		   uint32_t *gid, uint32_t **gids, size_t *ngids, struct kv_err **err)
{
	struct etc_reader r;
	if (reader_open(&r, f, "/etc/group", err) < 0)
		return -1;
	int rc = 0;
	while (r.s) {
		struct group gr, *res = NULL;
		int n = next_rc(fgetgrent_r(r.s, &gr, r.buf, r.buflen, &res), "/etc/group", err);
		if (n <= 0) {
			rc = n;
			break;
		}
		bool hit = false;
		if (nis_name(gr.gr_name))
			continue;
		if (name)
			hit = strcmp(gr.gr_name, name) == 0;
		for (char **m = gr.gr_mem; member && !hit && m && *m; m++)
			hit = strcmp(*m, member) == 0;
		if (!hit)
			continue;
		if (gr.gr_gid > ID_MAX) {
			rc = kv_err_plain(err, ERANGE,
					  "the image's /etc/group line %u: gid out of range (over "
					  "%u)",
					  reader_line(&r), ID_MAX);
			break;
		}
		if (name) {
			*gid = gr.gr_gid;
			rc = 1;
			break;
		}
		*gids = realloc(*gids, (*ngids + 1) * sizeof(**gids));
		if (!*gids)
			abort();
		(*gids)[(*ngids)++] = gr.gr_gid;
	}
	reader_close(&r);
	return rc;
}

static bool digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* s all digits, at most ID_MAX. */
static bool numeric_id(const char *s, uint32_t *out)
{
	if (!digits(s))
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno || v > ID_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* A file the lookup needs: unusable (BAD) is refused, saying why. */
static int need(const struct img_etc_file *f, struct kv_err **err)
{
	if (f->state == IMG_ETC_BAD)
		return kv_err_plain(err, EINVAL, "%s", f->text);
	return 0;
}

/* Both digits: the ids as they are, no files read. */
static int ids_only(const char *u, const char *g, uint32_t *uid, uint32_t *gid, struct kv_err **err)
{
	if (!numeric_id(u, uid))
		return kv_err_plain(err, ERANGE, "uid %s out of range (over %u)", u, ID_MAX);
	if (g && !numeric_id(g, gid))
		return kv_err_plain(err, ERANGE, "gid %s out of range (over %u)", g, ID_MAX);
	return 0;
}

static int resolve(const char *u, const char *g, const struct img_etc *etc, uint32_t *uid,
		   uint32_t *gid, uint32_t **gids, size_t *ngids, struct kv_err **err)
{
	uint32_t num = 0;
	bool numeric = numeric_id(u, &num);
	if (!numeric && digits(u))
		return kv_err_plain(err, ERANGE, "uid %s out of range (over %u)", u, ID_MAX);
	struct pw_hit hit = {0};
	int found = 0;
	/* A numeric uid needs no passwd: one Docker could not read is no entry. */
	if (!numeric && need(&etc->passwd, err) < 0)
		return -1;
	if (etc->passwd.state != IMG_ETC_BAD)
		found = pw_find(&etc->passwd, u, numeric, num, &hit, err);
	if (found < 0)
		return -1;
	cleanup_free char *matched = hit.name;
	if (!found && !numeric) {
		const char *line = NULL;
		size_t len = 0;
		unsigned no = etc->passwd.state == IMG_ETC_FILE && !nis_name(u)
				  ? line_of_name(&etc->passwd, u, &line, &len)
				  : 0;
		if (no)
			return pw_line_fail(no, line, len, err);
		return kv_err_plain(err, ENOENT, "no such user in the image's /etc/passwd");
	}
	*uid = found ? hit.uid : num;
	*gid = found ? hit.gid : 0;
	if (g) {
		if (numeric_id(g, gid))
			return 0;
		if (digits(g))
			return kv_err_plain(err, ERANGE, "gid %s out of range (over %u)", g,
					    ID_MAX);
		if (need(&etc->group, err) < 0)
			return -1;
		int r = gr_scan(&etc->group, g, NULL, gid, NULL, NULL, err);
		if (r == 0)
			return kv_err_plain(err, ENOENT,
					    "no such group %s in the image's /etc/group", g);
		return r < 0 ? -1 : 0;
	}
	if (!found || etc->group.state == IMG_ETC_NONE)
		return 0;
	if (need(&etc->group, err) < 0)
		return -1;
	return gr_scan(&etc->group, NULL, matched, NULL, gids, ngids, err);
}

int img_user_resolve(const char *user, const struct img_etc *etc, uint32_t *uid, uint32_t *gid,
		     uint32_t **gids, size_t *ngids, struct kv_err **err)
{
	*uid = *gid = 0;
	*gids = NULL;
	*ngids = 0;
	if (!*user)
		return 0;
	cleanup_free char *u = kv_strdup(user);
	char *g = strchr(u, ':');
	if (g)
		*g++ = '\0';
	int rc;
	if (!*u || (g && !*g))
		rc = kv_err_plain(err, EINVAL, "want user[:group], a name or an id each");
	else if (!etc && !(digits(u) && (!g || digits(g))))
		rc = kv_err_plain(err, ENOENT,
				  "the image was imported before kvrun kept its /etc/passwd and "
				  "/etc/group: import it again (kvrun image import) to resolve "
				  "names");
	else if (!etc) /* an old record: ids as given, as kvrun did then */
		rc = ids_only(u, g, uid, gid, err);
	else
		rc = resolve(u, g, etc, uid, gid, gids, ngids, err);
	if (rc < 0) {
		free(*gids);
		*gids = NULL;
		*ngids = 0;
		return kv_err_wrap(err, "image config: User %s", user);
	}
	return 0;
}
