-- Indexes for the case list's common filters and sorts (measured with 100,000 cases).
CREATE INDEX cases_status_priority ON cases (status, priority, updated_at);
CREATE INDEX cases_service_updated ON cases (service_code, updated_at);
CREATE INDEX cases_queue_updated ON cases (queue_code, updated_at);
CREATE INDEX cases_created ON cases (created_at);
