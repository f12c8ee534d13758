// Lint fixture: a contract lib must not depend on NestJS (or TypeORM, nats, pg, ...).
import { Injectable } from '@nestjs/common';

@Injectable()
export class NotAllowedInContracts {}
