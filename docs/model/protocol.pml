/*
 * The versioned coherence protocol of SharedEntities, for spin. docs/model/README.md explains the model, its
 * bounds, and which code each step stands for.
 *
 * One key. One database row (exists?, version, content id) with a row lock. One store item (a token, a lease
 * placeholder, a damaged value, or nothing). Two writers, two readers that keep their copies across checks, and an
 * environment that loses the store's item, forges a high store token (clean; -DFORGED=DIRTY or DELETED), and, with
 * -DDAMAGE, writes a value that is no token at all, with -DRESTORE restores the database, with -DREPLAY puts an old
 * token back.
 *
 * Assertions:
 *   - no stale read accepted: a content a reader accepts was the row's content at some instant of that check;
 *   - no lost update: a commit finds the row as the copy its write was based on (version and content);
 *   - (pan itself) no deadlock.
 *
 * -DCACHE adds the process-wide entity cache: each process has a cache cell (version, content) that its flows share;
 * writer Wn runs in the process of reader R(n-1), and repairs in their reader's process (-DCACHE_SHARED: R0 and R1 are
 * two flows of one process, with W1). A read by key serves the cell when the store vouches for its version, else loads
 * the row and offers it to the cell; an ordinary query's read is accepted and offered too; a commit drops its process's
 * cell. -DDROP_CACHE_<RULE> removes one of the cache's rules.
 *
 * -DDROP_<RULE> removes one rule of the protocol. Each gives a counterexample (Model.Tests checks it), but
 * DIRTY_ASKS_DATABASE and REFUSE_STORE_AHEAD, which matter only when versions repeat (README, "Two rules").
 *
 * Each atomic block is one step: one database statement or one store operation, together with what the process
 * then decides from its own variables (which interleaves with nothing). The printf lines narrate a counterexample
 * when spin replays it (spin -t); the search itself does not run them.
 */

#ifndef CHECKS0
#define CHECKS0 2          /* checks made by reader 0, keeping its copy between them */
#endif
#ifndef CHECKS1
#define CHECKS1 1
#endif
#ifndef ATTEMPTS1
#define ATTEMPTS1 1        /* write attempts of writer 1 (each based on a read of the row before it) */
#endif
#ifndef ATTEMPTS2
#define ATTEMPTS2 1
#endif
#ifndef MAXLOSS
#define MAXLOSS 1          /* items the store loses: eviction, TTL expiry, restart (one key: all the same) */
#endif
#ifndef FORGED
#define FORGED CLEAN       /* the state of the forged high token: CLEAN, DIRTY or DELETED */
#endif
#ifndef MAXDEL
#define MAXDEL 1           /* deletes: one incarnation change (an insert may follow) */
#endif

/* Writer paths. SERVER: ADO.NET and both EF Core paths (statement, raise, commit, publish as separate steps).
   EMBEDDED: the SQLite store in the writer's own transaction (the raise commits or rolls back with it). */
#define SERVER   0
#define EMBEDDED 1
#ifndef WRITER_PATH
#define WRITER_PATH SERVER
#endif

/* Tokens: 4·version + state; 0 is "no value" (no item, or a placeholder), below every token. */
#define DIRTY(v)    (4 * (v))
#define CLEAN(v)    (4 * (v) + 1)
#define DELETED(v)  (4 * (v) + 2)
#define VER(t)      ((t) / 4)
#define IS_DIRTY(t) ((t) != 0 && (t) % 4 == 0)
#define IS_CLEAN(t) ((t) % 4 == 1)

#define BIT(c) (1 << (c))

/* Write kinds. */
#define UPDATE 0
#define DELETE 1
#define INSERT 2
#define REPAIR 3

/* What a write came to. */
#define REFUSED   0
#define COMMITTED 1
#define LOCKED    2        /* inside the write: the statement is done */

/* ---- database ---- */
bool db_ex = 1;
byte db_ver = 1;
byte db_con = 1;     /* content id of the committed row; 0 = no row */
byte next_con = 2;   /* the next commit's content id: unique per commit */
byte lk = 0;         /* exclusive row lock of an uncommitted write: its holder's id; 0 = none */
byte sh = 0;         /* FOR SHARE holders (lease fillers) */
byte hiver = 1;      /* highest version any write has used; a fresh insert goes above it (a time-based start) */
byte dels = 0;

#ifdef RESTORE
bool restored = 0;
bool pv_ok = 0;      /* the row as it was before the last commit: what a restore brings back */
bool pv_ex = 0;
byte pv_ver = 0;
byte pv_con = 0;
#define REMEMBER() pv_ok = 1; pv_ex = db_ex; pv_ver = db_ver; pv_con = db_con
#else
#define REMEMBER() skip
#endif

/* ---- store (one item) ---- */
byte st = CLEAN(1);  /* the token; 0 = no value */
bool ph = 0;         /* the item is a lease placeholder (st = 0) */
bool dmg = 0;        /* the item holds a value that is no token (st = 0): garbage, out of range, oversized */
byte cas = 0;        /* the cas of the current placeholder or damaged value; each new one gets a new one */
byte losses = 0;
bool forged = 0;
bool damaged = 0;

#ifdef CACHE
/* ---- the entity cache: one cell per process, the row last read there ---- */
byte cv[2] = 1;      /* the cell's version; 0 = empty (the processes start having read v1 c1) */
byte cc[2] = 1;      /* its content */
#ifdef CACHE_SHARED
/* R0 and R1 are two concurrent flows of process 0 (with W1); W2 runs in process 1, which reads nothing */
#define CELL(i) 0
#define PROC(me) ((me) == 2 -> 1 : 0)
#else
/* process 0: R0 and W1; process 1: R1 and W2; a repair runs in its reader's process */
#define CELL(i) (i)
#define PROC(me) ((me) <= 2 -> (me) - 1 : (me) - 3)
#endif
#ifdef DROP_CACHE_COMMIT_FORGETS
#define DROP_CELL(me) skip
#else
#define DROP_CELL(me) cv[PROC(me)] = 0; cc[PROC(me)] = 0
#endif
/* A token the library cannot have written for a row cached at v: replaced by a fill, as a won lease is. */
#define TOKEN_DAMAGE(t, v) ((t) != 0 && ((IS_CLEAN(t) && VER(t) < (v)) || (IS_DIRTY(t) && VER(t) < (v)) || ((t) % 4 == 2 && VER(t) <= (v))))
#else
#define DROP_CELL(me) skip
#endif

/* Scratch values of one atomic step (not part of the state: always dead between steps). */
hidden byte tv, tx, rcur, rok;

/* ---- readers' check windows ---- */
bool inchk[2];
byte seen[2];        /* contents the row had during the reader's current check, as bits */

/* Inside atomic, after the committed content changed. */
inline db_changed() {
  if :: inchk[0] -> seen[0] = seen[0] | BIT(db_con) :: else -> skip fi;
  if :: inchk[1] -> seen[1] = seen[1] | BIT(db_con) :: else -> skip fi
}

/* Narration: the store's item and the row, as text. */
inline show_store() {
  if
  :: ph -> printf("placeholder #%d", cas)
  :: dmg -> printf("damaged #%d", cas)
  :: !ph && !dmg && st == 0 -> printf("nothing")
  :: IS_DIRTY(st) -> printf("dirty(v%d)", VER(st))
  :: IS_CLEAN(st) -> printf("clean(v%d)", VER(st))
  :: st != 0 && st % 4 == 2 -> printf("deleted(v%d)", VER(st))
  fi
}
inline show_row() {
  if :: db_ex -> printf("row v%d c%d", db_ver, db_con) :: else -> printf("no row") fi
}

inline who(me) {
  if :: me <= 2 -> printf("W%d", me) :: else -> printf("R%d repairs", me - 3) fi
}

/* ---- store operations, each atomic on the store (used inside atomic) ---- */

/* Raise(k, t): token := max(token, t); no value (a placeholder, a damaged value) counts as below everything. ok, or
   not stored and cur. */
inline st_raise(t, ok, cur) {
#ifdef DROP_TOKENS_ONLY_RISE
  st = t; ph = 0; dmg = 0; ok = 1; cur = 0
#else
  if
  :: st < t -> st = t; ph = 0; dmg = 0; ok = 1; cur = 0
  :: else -> ok = 0; cur = st
  fi
#endif
}

/* Publish(k, expected, t): token := t only if the token is exactly `expected`; never adds. */
inline st_publish(expected, t) {
#if defined(DROP_TOKENS_ONLY_RISE)
  st = t; ph = 0; dmg = 0
#elif defined(DROP_PUBLISH_ONLY_OWN_DIRTY)
  if :: st < t -> st = t; ph = 0; dmg = 0 :: else -> skip fi     /* as a raise: adds on a miss, raises whatever it finds */
#else
  if :: st == expected -> st = t :: else -> skip fi
#endif
}

/* Fill(k, t, c): token := t only if the item is still the placeholder or damaged value c. */
inline st_fill(t, c) {
  if :: (ph || dmg) && cas == c -> st = t; ph = 0; dmg = 0 :: else -> skip fi
}

/* ---- the writer path ---- */

/* A write rolls back (inside atomic): the database releases the row lock. */
#if defined(CACHE) && defined(DROP_CACHE_COMMITTED_ONLY)
/* its values are then no commit's: the next write of the same version writes other values */
#define ROLLBACK() lk = 0; if :: kind == UPDATE || kind == INSERT -> next_con++ :: else -> skip fi
#else
#define ROLLBACK() lk = 0
#endif

/* The write's own variables, cleared when it ends (fewer distinct states). */
#define WRESET() bver = 0; bcon = 0; kind = 0; nver = 0; unreach = 0

/* Raise(k, dirty(nver)), or find the store unreachable (inside atomic). */
inline raise_or_unreachable() {
  if
  :: unreach = 1; who(me); printf(": the store is unreachable\n")
  :: unreach = 0; tv = DIRTY(nver); st_raise(tv, rok, rcur);
     who(me); printf(": raise dirty(v%d): ", nver);
     if :: rok -> printf("stored") :: else -> printf("not stored") fi;
     printf(", store: "); show_store(); printf("\n")
  fi
}

/* After the raise: whether the write must roll back instead of committing. */
#ifdef DROP_COMMIT_NEEDS_DIRTY
#define NO_DIRTY_TOKEN 0
#else
#define NO_DIRTY_TOKEN unreach
#endif
#ifdef DROP_REFUSE_STORE_AHEAD
#define STORE_AHEAD 0
#else
#define STORE_AHEAD (!unreach && !rok && rcur > DIRTY(nver))
#endif

/* The commit's effect on the row (inside atomic). */
inline apply_commit() {
  assert(db_ex == (kind != INSERT) && (kind == INSERT || (db_ver == bver && db_con == bcon)));  /* no lost update */
  REMEMBER();
  if
  :: kind == DELETE -> db_ex = 0; db_con = 0
  :: kind == REPAIR -> db_ver = nver      /* the database's content, at a version above the store's */
  :: else -> db_ex = 1; db_ver = nver; db_con = next_con; next_con++
  fi;
  lk = 0;
  db_changed();
  DROP_CELL(me);     /* the commit forgets its process's cached row */
  who(me); printf(": COMMIT: "); show_row(); printf("\n")
}

/*
 * One write, then `goto wdone` (a label of the caller's) with out = COMMITTED or REFUSED. kind UPDATE/DELETE/REPAIR
 * is guarded on version bver (INSERT: the row must not exist) and based on content bcon; REPAIR comes with nver set,
 * the others get it here. The steps: guarded statement (takes the row lock), raise dirty(nver) under the lock,
 * commit, publish.
 *
 * A process can die between any two steps. Spin explores every schedule, including those in which a process never
 * takes another step, so a death needs modelling only where it has an effect of its own: before the commit, the
 * database rolls the transaction back and releases the row lock (the rollback choice below, which also stands for a
 * failed COMMIT); after the commit, a death is a publish that never comes.
 */
inline write(me, path) {
#ifdef DROP_RAISE_UNDER_LOCK
  /* the old order: the dirty token goes up before the guarded statement */
  atomic {
    if
    :: path == SERVER ->
       if :: kind == INSERT -> nver = hiver + 1 :: kind == UPDATE || kind == DELETE -> nver = bver + 1 :: else -> skip fi;
       raise_or_unreachable();
       if :: NO_DIRTY_TOKEN || STORE_AHEAD -> who(me); printf(": gives up\n"); out = REFUSED; WRESET(); goto wdone :: else -> skip fi
    :: else -> skip
    fi
  };
#endif
  /* 1. guarded statement: takes the row lock (waits while a writer or a FOR SHARE reader holds it) */
  atomic {
    lk == 0 && (sh == 0 || !db_ex) ->
    if
    :: (kind == INSERT && !db_ex) || (kind != INSERT && db_ex && db_ver == bver) ->
       lk = me;
       if
       :: nver != 0 -> skip
       :: nver == 0 && kind == INSERT ->
#ifdef DROP_FRESH_VERSIONS
          nver = 1                        /* the old incarnation's first version again */
#else
          nver = hiver + 1                /* a version never used for this key */
#endif
       :: nver == 0 && kind != INSERT -> nver = bver + 1
       fi;
       if :: nver > hiver -> hiver = nver :: else -> skip fi;
#if defined(CACHE) && defined(DROP_CACHE_COMMITTED_ONLY)
       /* the cell takes the write's own values (or a read inside its transaction) before the commit; no other
          commit can come while the row is locked, so next_con is the content this write commits, if it does */
       if :: kind == UPDATE || kind == INSERT -> cv[PROC(me)] = nver; cc[PROC(me)] = next_con :: else -> skip fi;
#endif
       if
       :: kind == INSERT -> who(me); printf(": INSERT at v%d (row locked)\n", nver)
       :: kind == DELETE -> who(me); printf(": DELETE WHERE version = %d (row locked)\n", bver)
       :: else -> who(me); printf(": UPDATE SET version = %d WHERE version = %d (row locked)\n", nver, bver)
       fi
    :: else ->                            /* zero rows: refused */
       who(me); printf(": the guarded statement on v%d finds ", bver); show_row(); printf(": refused\n");
       out = REFUSED; WRESET(); goto wdone
    fi
  };
  if
  :: path == SERVER ->
#ifndef DROP_RAISE_UNDER_LOCK
     /* 2. raise dirty(nver) while holding the row lock; no token, or a higher one: roll back */
     atomic {
       raise_or_unreachable();
       if
       :: NO_DIRTY_TOKEN || STORE_AHEAD -> who(me); printf(": ROLLBACK\n"); ROLLBACK(); out = REFUSED; WRESET(); goto wdone
       :: else -> skip
       fi
     };
#endif
     /* 3. commit, or roll back (died, or the COMMIT failed): the dirty token stays */
     atomic {
       if
       :: who(me); printf(": ROLLBACK (died or the commit failed)\n"); ROLLBACK(); out = REFUSED; WRESET(); goto wdone
       :: apply_commit()
       fi
     }
  :: else ->
     /* EMBEDDED: raise and commit in one SQLite transaction; a rollback undoes both */
     atomic {
       if
       :: who(me); printf(": ROLLBACK (died or the commit failed)\n"); ROLLBACK(); out = REFUSED; WRESET(); goto wdone
       :: raise_or_unreachable();
          if
          :: NO_DIRTY_TOKEN || STORE_AHEAD -> who(me); printf(": ROLLBACK\n"); ROLLBACK(); out = REFUSED; WRESET(); goto wdone
          :: else -> apply_commit()
          fi
       fi
     }
  fi;
  /* 4. publish the writer's own dirty token as clean (deleted for a delete) */
  atomic {
    if
    :: unreach -> skip
    :: else ->
       tx = DIRTY(nver);
       if :: kind == DELETE -> tv = DELETED(nver) :: else -> tv = CLEAN(nver) fi;
       st_publish(tx, tv);
       who(me); printf(": publish v%d, store: ", nver); show_store(); printf("\n")
    fi;
    out = COMMITTED; WRESET(); goto wdone
  }
}

proctype Writer(byte me; byte path; byte attempts) {
  byte n = 0;
  byte bver, bcon, kind, nver, out;
  bool unreach;
wdone:   /* the next attempt */
  atomic {
    if
    :: n == attempts -> goto stop
    :: else ->
       /* the copy the write is based on: a read of the committed row, some time before the write */
       n++; out = 0; bver = db_ver; bcon = db_con;
       if
       :: db_ex -> kind = UPDATE
       :: db_ex && dels < MAXDEL -> kind = DELETE; dels++
       :: !db_ex -> kind = INSERT
       fi;
       printf("W%d reads the row: ", me); show_row(); printf("\n")
    fi
  };
  write(me, path);
stop:
  skip
}

/*
 * A reader keeps a copy (L, C) of the row and checks it `checks` times. A check accepts a content (asserting that
 * the row had it at some instant of the check) or says "deleted" (accepts nothing, drops the copy; the next check
 * then loads the row again if there is one).
 */
#define ACCEPT(c) printf("R%d accepts c%d\n", i, c); assert(seen[i] & BIT(c))
#ifdef CACHE
#define DONE()    inchk[i] = 0; mycas = 0; r = 0; rc = 0; x = 0; kv = 0; kc = 0
#else
#define DONE()    inchk[i] = 0; mycas = 0; r = 0; rc = 0; x = 0
#endif
#define GONE()    printf("R%d: deleted\n", i); has = 0; L = 0; C = 0

proctype Reader(byte i; byte me; byte checks; byte path) {
  byte L = 1, C = 1; bool has = 1;
  byte n = 0;
  byte mycas, r, rc, x;
  byte bver, bcon, kind, nver, out;   /* a repair's write */
  bool unreach;
#ifdef CACHE
  byte kv, kc;                        /* the cached row a read by key found in the cell */
#endif

start:
  atomic {
    if
    :: n == checks -> goto stop
    :: n < checks && !has ->
       n++;
       if :: db_ex -> L = db_ver; C = db_con; has = 1 :: else -> skip fi;   /* a find loads the row */
       printf("R%d finds the row: ", i); show_row(); printf("\n");
       goto start
    :: n < checks && has ->
       /* the check begins with Read(k, lease) */
       n++; inchk[i] = 1; seen[i] = BIT(db_con);
       printf("R%d checks its copy v%d c%d; store: ", i, L, C); show_store(); printf("; "); show_row(); printf("\n");
       if
       :: printf("R%d: store unavailable\n", i); goto ask
       :: ph ->                                              /* LeaseLost */
#ifdef DROP_MISS_NOT_FRESH
          ACCEPT(C); DONE(); goto start
#else
          goto ask
#endif
       :: dmg -> mycas = cas;                                /* Damaged: repaired as a miss would be */
          printf("R%d repairs the damaged value #%d\n", i, cas);
          goto fill
       :: !ph && !dmg && st == 0 -> ph = 1; cas++; mycas = cas;      /* LeaseWon */
          printf("R%d wins the lease #%d\n", i, cas);
#ifdef DROP_MISS_NOT_FRESH
          ACCEPT(C); DONE(); goto start
#else
          goto fill
#endif
       :: IS_CLEAN(st) && VER(st) == L -> ACCEPT(C); DONE(); goto start     /* FRESH */
       :: IS_CLEAN(st) && VER(st) > L -> x = VER(st); goto reload
#ifdef DROP_DIRTY_ASKS_DATABASE
       :: IS_DIRTY(st) && VER(st) == L -> ACCEPT(C); DONE(); goto start
       :: st != 0 && !IS_CLEAN(st) && !(IS_DIRTY(st) && VER(st) == L) -> goto ask
#else
       :: st != 0 && !IS_CLEAN(st) -> goto ask               /* dirty, deleted */
#endif
       :: IS_CLEAN(st) && VER(st) < L -> goto ask
       fi
#ifdef CACHE
    :: n < checks ->
       /* an ordinary query (or a read by key that finds the cell empty): a plain read outside any transaction; the
          row counts as checked, and is offered to the cell */
       n++; seen[i] = BIT(db_con);
       printf("R%d queries the row: ", i); show_row(); printf("\n");
       if
       :: db_ex -> ACCEPT(db_con); r = db_ver; rc = db_con; goto offer
       :: else -> DONE(); goto start
       fi
    :: n < checks && cv[CELL(i)] != 0 ->
       /* a read by key through the cache: Read(k, lease), for the version in the cell */
       n++; inchk[i] = 1; seen[i] = BIT(db_con); kv = cv[CELL(i)]; kc = cc[CELL(i)];
       printf("R%d reads by key, cell: v%d c%d; store: ", i, kv, kc); show_store(); printf("; "); show_row(); printf("\n");
       if
       :: printf("R%d: store unavailable\n", i); goto load
       :: ph -> goto load                                    /* LeaseLost */
       :: dmg -> mycas = cas; goto cfill                     /* Damaged: a fill, as for a won lease */
       :: !ph && !dmg && st == 0 -> ph = 1; cas++; mycas = cas;      /* LeaseWon */
          printf("R%d wins the lease #%d\n", i, cas);
#ifdef DROP_CACHE_LOCKED_FILL
          ACCEPT(kc); DONE(); goto start
#else
          goto cfill
#endif
#ifdef DROP_CACHE_EXACT_VERSION
       :: IS_CLEAN(st) -> ACCEPT(kc); DONE(); goto start                 /* any clean token serves the cell */
       :: st != 0 && !IS_CLEAN(st) && TOKEN_DAMAGE(st, kv) -> x = st; goto cfill
       :: st != 0 && !IS_CLEAN(st) && !TOKEN_DAMAGE(st, kv) -> goto load
#else
       :: IS_CLEAN(st) && VER(st) == kv -> ACCEPT(kc); DONE(); goto start   /* the store vouches for the cell */
       :: TOKEN_DAMAGE(st, kv) -> x = st; goto cfill                      /* older than the cell: a fill by CAS */
       :: st != 0 && !(IS_CLEAN(st) && VER(st) == kv) && !TOKEN_DAMAGE(st, kv) -> goto load
#endif
       fi
#endif
    fi
  };

reload:
  /* clean(x), x > L: RELOAD, a plain read of the newest committed row */
  atomic {
    printf("R%d reloads: ", i); show_row(); printf("\n");
    if
    :: !db_ex -> DONE(); GONE(); goto start
    :: db_ex && db_ver >= x -> ACCEPT(db_con); L = db_ver; C = db_con; DONE(); goto start
    :: db_ex && db_ver < x ->
       /* the store is ahead of the database: accept the row, and REPAIR */
       ACCEPT(db_con); r = db_ver; rc = db_con;
#ifdef DROP_REPAIR_JUMPS
       goto lower
#else
       kind = REPAIR; bver = r; bcon = rc; nver = x + 1
#endif
    fi
  };
#ifdef DROP_REPAIR_JUMPS
lower:
  atomic {
    st = CLEAN(r); ph = 0;                                  /* lower the token to the row's version */
    printf("R%d lowers the token, store: ", i); show_store(); printf("\n");
    L = r; C = rc; DONE(); goto start
  }
#else
  write(me, path);
wdone:
  /* committed: our copy is the new version; refused: the reloaded row is still what we accept */
  atomic { if :: out == COMMITTED -> L = x + 1 :: else -> L = r fi; C = rc; out = 0; DONE(); goto start }
#endif

fill:
  /* LeaseWon: FILL from a locking read (FOR SHARE waits while a writer holds the row), then release */
#ifndef DROP_LOCKING_FILL
  atomic {
    (lk == 0 || !db_ex) ->
    printf("R%d reads the row FOR SHARE: ", i); show_row(); printf("\n");
    if :: db_ex -> r = db_ver; sh++ :: else -> DONE(); GONE(); goto start fi
  };
  atomic {
    if :: tv = CLEAN(r); st_fill(tv, mycas) :: printf("R%d: the fill failed\n", i) fi;
    sh--;
    printf("R%d fills clean(v%d) and releases, store: ", i, r); show_store(); printf("\n");
    if :: r == L -> ACCEPT(C); DONE(); goto start :: else -> goto reload_any fi
  };
#else
  atomic {
    printf("R%d reads the row (no lock): ", i); show_row(); printf("\n");
    if :: db_ex -> r = db_ver :: else -> DONE(); GONE(); goto start fi
  };
  atomic {
    if :: tv = CLEAN(r); st_fill(tv, mycas) :: printf("R%d: the fill failed\n", i) fi;
    printf("R%d fills clean(v%d), store: ", i, r); show_store(); printf("\n");
    if :: r == L -> ACCEPT(C); DONE(); goto start :: else -> goto reload_any fi
  };
#endif

#ifdef CACHE
cfill:
  /* the cache's fill: the version FOR SHARE (waits while a writer holds the row), Fill(clean(r)) by CAS over what the
     store read saw, release; the cell is served if r is its version */
  atomic {
    (lk == 0 || !db_ex) ->
    printf("R%d reads the version FOR SHARE: ", i); show_row(); printf("\n");
    if :: db_ex -> r = db_ver; sh++ :: else -> goto load fi
  };
  atomic {
    if
    :: tv = CLEAN(r);
       if
       :: mycas != 0 -> st_fill(tv, mycas)
       :: else -> if :: !ph && !dmg && st == x -> st = tv :: else -> skip fi     /* CAS over the token it saw */
       fi
    :: printf("R%d: the fill failed\n", i)
    fi;
    sh--;
    printf("R%d fills clean(v%d) and releases, store: ", i, r); show_store(); printf("\n");
    if :: r == kv -> ACCEPT(kc); DONE(); goto start :: else -> r = 0; goto load fi
  };

load:
  /* the caller loads the row: a plain read outside any transaction, accepted, then offered to the cell */
  atomic {
    printf("R%d loads: ", i); show_row(); printf("\n");
    if
    :: db_ex -> ACCEPT(db_con); r = db_ver; rc = db_con; inchk[i] = 0
    :: else -> DONE(); goto start
    fi
#ifdef CACHE_OFFER_STEP
  };
offer:
  atomic {         /* the offer as a step of its own: a commit of this process may drop the cell in between */
#else
    ;
offer:
#endif
#ifdef DROP_CACHE_KEEP_HIGHER
    cv[CELL(i)] = r; cc[CELL(i)] = rc;
#else
    if :: cv[CELL(i)] <= r -> cv[CELL(i)] = r; cc[CELL(i)] = rc :: else -> skip fi;      /* Offer keeps the higher version */
#endif
    printf("R%d offers v%d c%d, cell: v%d c%d\n", i, r, rc, cv[CELL(i)], cc[CELL(i)]);
    DONE(); goto start
  };
#endif

ask:
  /* ASK THE DATABASE (clean(x < L), dirty, deleted, LeaseLost, unavailable): read the version */
  atomic {
    printf("R%d asks the database: ", i); show_row(); printf("\n");
    if
    :: !db_ex -> DONE(); GONE(); goto start
    :: db_ex && db_ver == L -> ACCEPT(C); DONE(); goto start
    :: db_ex && db_ver != L -> goto reload_any                 /* moved on, or went back */
    fi
  };

reload_any:
  /* reload the row and accept it */
  atomic {
    printf("R%d reloads: ", i); show_row(); printf("\n");
    if
    :: db_ex -> ACCEPT(db_con); L = db_ver; C = db_con
    :: else -> GONE()
    fi;
    DONE(); goto start
  };
stop:
  skip
}

/* The store loses its item, a token nobody wrote appears, the database goes back. */
active proctype Environment() {
end:
  do
  :: atomic { losses < MAXLOSS && (st != 0 || ph || dmg) -> st = 0; ph = 0; dmg = 0; losses++; printf("the store loses the item\n") }
#ifndef NO_FORGE
  :: atomic {                                                /* store ahead: a forged high token */
       !forged -> forged = 1; ph = 0; dmg = 0; st = FORGED(hiver + 1);
       printf("a forged token: store: "); show_store(); printf("\n")
     }
#endif
#ifdef DAMAGE
  :: atomic {                                                /* a value that is no token: garbage, out of range */
       !damaged -> damaged = 1; st = 0; ph = 0; dmg = 1; cas++;
       printf("a damaged value: store: "); show_store(); printf("\n")
     }
#endif
#ifdef REPLAY
  :: atomic {                                                /* a client of the store puts an old token back */
       !forged && st > CLEAN(1) -> forged = 1; st = CLEAN(1); ph = 0; dmg = 0;
       printf("an old token put back: store: "); show_store(); printf("\n")
     }
#endif
#ifdef RESTORE
  :: atomic {
       !restored && pv_ok && lk == 0 && sh == 0 ->          /* between transactions, after a commit */
       restored = 1;
       db_ex = pv_ex; db_ver = pv_ver; db_con = pv_con;     /* the row goes back; the store keeps its token */
#ifdef RESTORE_FENCED
       /* a restore procedure: the row's version jumps above every version used, and the store is emptied */
#ifndef DROP_RESTORE_JUMP
       if :: db_ex -> db_ver = hiver + 1; hiver = db_ver :: else -> skip fi;
#endif
#ifndef DROP_RESTORE_FLUSH
       st = 0; ph = 0; dmg = 0;
#endif
#endif
       db_changed();
       printf("the database is restored: "); show_row(); printf("; store: "); show_store(); printf("\n")
     }
#endif
  od
}

init {
  atomic {
    run Writer(1, WRITER_PATH, ATTEMPTS1);
    run Writer(2, WRITER_PATH, ATTEMPTS2);
    run Reader(0, 3, CHECKS0, WRITER_PATH);
    run Reader(1, 4, CHECKS1, WRITER_PATH)
  }
}
