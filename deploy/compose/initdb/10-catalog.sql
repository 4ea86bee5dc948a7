-- pg1 holds the ordo catalog next to its node database. The postgres image runs this
-- file once, when it initialises an empty data volume.
CREATE DATABASE ordo_catalog;
