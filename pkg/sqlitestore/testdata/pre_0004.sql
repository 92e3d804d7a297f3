-- A service's store as migrations 0001-0003 left it (pkg/sqlitestore at
-- commit 4ada727), frozen with the data that store wrote for: A created
-- then updated, B created then made private, C shared with chengdu-hitech
-- then deleted, D shared with haifa-lifescience then re-shared with
-- chengdu-hitech instead. Files made before the by-sequence index look like
-- this whatever the migrations become.
CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL);
CREATE TABLE listings (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    doc        TEXT    NOT NULL
);
CREATE INDEX listings_updated_at ON listings(updated_at);
CREATE VIRTUAL TABLE listings_fts USING fts5(
    title, body, facets,
    content = '', contentless_delete = 1,
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    op         TEXT    NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    listing_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    doc        TEXT    NOT NULL
);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
ALTER TABLE changes ADD COLUMN prev_doc TEXT;
CREATE INDEX changes_at ON changes(at);

INSERT INTO schema_migrations VALUES('migrations/0001_listings.sql',1796037025);
INSERT INTO schema_migrations VALUES('migrations/0002_change_previous.sql',1796037025);
INSERT INTO schema_migrations VALUES('migrations/0003_changes_at.sql',1796037025);
INSERT INTO meta VALUES('cursor_key',X'e2238ce60462c57067691fcb2fde726cf43d4bb1b7d44abc359765a79965deac');
INSERT INTO listings VALUES(1,'prj_01JNJ4ZV00AAAAAAAAAAAAAAAA',2,1772356200000000,'{"id":"prj_01JNJ4ZV00AAAAAAAAAAAAAAAA","park":"xian-hitech","kind":"project","title":"纳米超级铜 Nano copper","summary":"新材料 growth","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"club","version":2,"created_at":"2026-03-01T09:00:00Z","updated_at":"2026-03-01T09:10:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO listings VALUES(2,'prj_01JNJ4ZV00BBBBBBBBBBBBBBBB',2,1772356260000000,'{"id":"prj_01JNJ4ZV00BBBBBBBBBBBBBBBB","park":"xian-hitech","kind":"project","title":"芯片设计 chip design","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"private","version":2,"created_at":"2026-03-01T09:01:00Z","updated_at":"2026-03-01T09:11:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO listings VALUES(4,'prj_01JNJ4ZV00DDDDDDDDDDDDDDDD',2,1772356380000000,'{"id":"prj_01JNJ4ZV00DDDDDDDDDDDDDDDD","park":"xian-hitech","kind":"project","title":"新能源汽车 electric vehicles","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["chengdu-hitech"],"version":2,"created_at":"2026-03-01T09:03:00Z","updated_at":"2026-03-01T09:13:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO changes VALUES(1,'created','prj_01JNJ4ZV00AAAAAAAAAAAAAAAA',1,1772355600000000,'{"id":"prj_01JNJ4ZV00AAAAAAAAAAAAAAAA","park":"xian-hitech","kind":"project","title":"纳米超级铜 Nano copper","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"club","version":1,"created_at":"2026-03-01T09:00:00Z","updated_at":"2026-03-01T09:00:00Z","attrs":{"stage":"pilot","trl":6}}',NULL);
INSERT INTO changes VALUES(2,'created','prj_01JNJ4ZV00BBBBBBBBBBBBBBBB',1,1772355660000000,'{"id":"prj_01JNJ4ZV00BBBBBBBBBBBBBBBB","park":"xian-hitech","kind":"project","title":"芯片设计 chip design","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"club","version":1,"created_at":"2026-03-01T09:01:00Z","updated_at":"2026-03-01T09:01:00Z","attrs":{"stage":"pilot","trl":6}}',NULL);
INSERT INTO changes VALUES(3,'created','prj_01JNJ4ZV00CCCCCCCCCCCCCCCC',1,1772355720000000,'{"id":"prj_01JNJ4ZV00CCCCCCCCCCCCCCCC","park":"xian-hitech","kind":"project","title":"硅谷离岸创新中心 offshore centre","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["chengdu-hitech"],"version":1,"created_at":"2026-03-01T09:02:00Z","updated_at":"2026-03-01T09:02:00Z","attrs":{"stage":"pilot","trl":6}}',NULL);
INSERT INTO changes VALUES(4,'created','prj_01JNJ4ZV00DDDDDDDDDDDDDDDD',1,1772355780000000,'{"id":"prj_01JNJ4ZV00DDDDDDDDDDDDDDDD","park":"xian-hitech","kind":"project","title":"新能源汽车 electric vehicles","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["haifa-lifescience"],"version":1,"created_at":"2026-03-01T09:03:00Z","updated_at":"2026-03-01T09:03:00Z","attrs":{"stage":"pilot","trl":6}}',NULL);
INSERT INTO changes VALUES(5,'updated','prj_01JNJ4ZV00AAAAAAAAAAAAAAAA',2,1772356200000000,'{"id":"prj_01JNJ4ZV00AAAAAAAAAAAAAAAA","park":"xian-hitech","kind":"project","title":"纳米超级铜 Nano copper","summary":"新材料 growth","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"club","version":2,"created_at":"2026-03-01T09:00:00Z","updated_at":"2026-03-01T09:10:00Z","attrs":{"stage":"pilot","trl":6}}','{"id":"prj_01JNJ4ZV00AAAAAAAAAAAAAAAA","park":"xian-hitech","kind":"project","title":"纳米超级铜 Nano copper","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"club","version":1,"created_at":"2026-03-01T09:00:00Z","updated_at":"2026-03-01T09:00:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO changes VALUES(6,'updated','prj_01JNJ4ZV00BBBBBBBBBBBBBBBB',2,1772356260000000,'{"id":"prj_01JNJ4ZV00BBBBBBBBBBBBBBBB","park":"xian-hitech","kind":"project","title":"芯片设计 chip design","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"private","version":2,"created_at":"2026-03-01T09:01:00Z","updated_at":"2026-03-01T09:11:00Z","attrs":{"stage":"pilot","trl":6}}','{"id":"prj_01JNJ4ZV00BBBBBBBBBBBBBBBB","park":"xian-hitech","kind":"project","title":"芯片设计 chip design","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"club","version":1,"created_at":"2026-03-01T09:01:00Z","updated_at":"2026-03-01T09:01:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO changes VALUES(7,'deleted','prj_01JNJ4ZV00CCCCCCCCCCCCCCCC',2,1772356320000000,'{"id":"prj_01JNJ4ZV00CCCCCCCCCCCCCCCC","park":"xian-hitech","kind":"project","title":"硅谷离岸创新中心 offshore centre","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["chengdu-hitech"],"version":2,"created_at":"2026-03-01T09:02:00Z","updated_at":"2026-03-01T09:12:00Z","attrs":{"stage":"pilot","trl":6}}','{"id":"prj_01JNJ4ZV00CCCCCCCCCCCCCCCC","park":"xian-hitech","kind":"project","title":"硅谷离岸创新中心 offshore centre","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["chengdu-hitech"],"version":1,"created_at":"2026-03-01T09:02:00Z","updated_at":"2026-03-01T09:02:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO changes VALUES(8,'updated','prj_01JNJ4ZV00DDDDDDDDDDDDDDDD',2,1772356380000000,'{"id":"prj_01JNJ4ZV00DDDDDDDDDDDDDDDD","park":"xian-hitech","kind":"project","title":"新能源汽车 electric vehicles","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["chengdu-hitech"],"version":2,"created_at":"2026-03-01T09:03:00Z","updated_at":"2026-03-01T09:13:00Z","attrs":{"stage":"pilot","trl":6}}','{"id":"prj_01JNJ4ZV00DDDDDDDDDDDDDDDD","park":"xian-hitech","kind":"project","title":"新能源汽车 electric vehicles","summary":"新材料 pilot","sectors":["new-materials"],"country":"CN","city":"西安","seeking":["investment"],"visibility":"peers","share_with":["haifa-lifescience"],"version":1,"created_at":"2026-03-01T09:03:00Z","updated_at":"2026-03-01T09:03:00Z","attrs":{"stage":"pilot","trl":6}}');
INSERT INTO listings_fts(rowid, title, body, facets) VALUES (1, ' 纳米 米超 超级 级铜 铜  Nano copper', ' 新材 材料 料  growth  西安 安  ', '1110101119045109097116101114105097108115 2067078 3105110118101115116109101110116 5112105108111116 8099108117098');
INSERT INTO listings_fts(rowid, title, body, facets) VALUES (2, ' 芯片 片设 设计 计  chip design', ' 新材 材料 料  pilot  西安 安  ', '1110101119045109097116101114105097108115 2067078 3105110118101115116109101110116 5112105108111116 8112114105118097116101');
INSERT INTO listings_fts(rowid, title, body, facets) VALUES (4, ' 新能 能源 源汽 汽车 车  electric vehicles', ' 新材 材料 料  pilot  西安 安  ', '1110101119045109097116101114105097108115 2067078 3105110118101115116109101110116 5112105108111116 8112101101114115 9099104101110103100117045104105116101099104');
