-- Materialised saved segments: who belongs to each segment, kept up to date
-- by the segment refresh (Membership::RefreshSegments). MemberSnapshot
-- carries a member's segment_ids from here. See docs/adr/0009-membership.md.

-- The current members of each saved segment. The primary key serves "the
-- members of a segment" (member_count); the second key serves "the segments
-- of a member" (snapshots) and "the rows of a member range" (refresh).
CREATE TABLE IF NOT EXISTS segment_members (
  segment_id VARCHAR(40) NOT NULL,
  member_id VARCHAR(40) NOT NULL,
  added_at DATETIME(6) NOT NULL,
  PRIMARY KEY (segment_id, member_id),
  UNIQUE KEY segment_members_member (member_id, segment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

-- One row: where the refresh pass stands. A pass walks all members by
-- member_id in chunks; each chunk's transaction locks this row first, so
-- replicas take chunks in turn and never evaluate the same one twice, and a
-- pass interrupted by a crash resumes after its last committed chunk.
CREATE TABLE IF NOT EXISTS segment_refresh (
  id TINYINT NOT NULL PRIMARY KEY,
  -- Passes completed so far; the pass under way is number pass + 1.
  pass BIGINT NOT NULL,
  -- Last member evaluated by the pass under way; '' = the pass has not begun.
  after_member_id VARCHAR(40) NOT NULL,
  pass_started_at DATETIME(6) NULL,
  updated_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin;

INSERT IGNORE INTO segment_refresh (id, pass, after_member_id, pass_started_at, updated_at)
VALUES (1, 0, '', NULL, UTC_TIMESTAMP(6));

-- The segment version a pass began with. At the end of the pass, only
-- segments still at that version (filter unchanged throughout) get their
-- member_count and refreshed_at set.
ALTER TABLE segments ADD COLUMN IF NOT EXISTS refresh_version BIGINT NOT NULL DEFAULT 0;
