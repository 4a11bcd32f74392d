-- The SIP credentials of agents' phones: per realm, the HA1 digests of RFC 7616 (MD5 and SHA-256,
-- RFC 8760), never the password. The SIP user name is the console user name today; it has its
-- own column so that a phone's name can differ later without a migration.
CREATE TABLE sip_credentials (
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    username    TEXT   NOT NULL,
    realm       TEXT   NOT NULL,
    ha1_md5     TEXT   NOT NULL,
    ha1_sha256  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (realm, username)
);

CREATE INDEX sip_credentials_user ON sip_credentials (user_id);
